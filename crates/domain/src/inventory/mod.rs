//! The stock of one SKU.
//!
//! ```text
//!   create ──▶ ┌───────────────────────────────────────────┐
//!              │ received = available + reserved + shipped │
//!   restock ─▶ │   available ──reserve──▶ reserved (per order)
//!              │   available ◀──release── reserved         │
//!              │   reserved ───commit───▶ shipped          │
//!              └───────────────────────────────────────────┘
//! ```
//!
//! Units arrive (`restock`), are held for an order (`reserve`, refused when
//! fewer are available), given back (`release`) or leave with the order
//! (`commit`). One order holds at most one reservation per SKU. No count is
//! ever negative, and `received = available + reserved + shipped` after
//! every event.
//!
//! The entity is keyed by its SKU; on the log its id is a UUID derived from
//! the SKU ([`stock_id`]), so every SKU maps to one partition.

mod command;
mod decide;
mod error;
mod event;
mod state;

pub use command::InventoryCommand;
pub use decide::decide;
pub use error::InventoryError;
pub use event::InventoryEvent;
pub use state::{MAX_UNITS, Stock, evolve};

pub use crate::order::{Quantity, Sku};

use uuid::Uuid;

use crate::aggregate::Aggregate;

/// The namespace of stock ids derived from SKUs.
const NAMESPACE: Uuid = Uuid::from_u128(0x696e_7665_6e74_6f72_792d_736b_7573_2d31);

/// The id of the stock of `sku` on the log (a name-based UUID: the same SKU
/// always has the same id).
pub fn stock_id(sku: &Sku) -> Uuid {
    Uuid::new_v5(&NAMESPACE, sku.as_str().as_bytes())
}

/// The inventory aggregate type: plugs the functions of this module into the
/// generic machinery.
#[derive(Debug)]
pub enum InventoryAggregate {}

impl Aggregate for InventoryAggregate {
    const TYPE: &'static str = "inventory";
    type State = Option<Stock>;
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    type Error = InventoryError;

    fn command_name(command: &InventoryCommand) -> &'static str {
        command.name()
    }

    fn decide(
        command: &InventoryCommand,
        state: &Option<Stock>,
    ) -> Result<Vec<InventoryEvent>, InventoryError> {
        decide(command, state)
    }

    fn evolve(state: Option<Stock>, event: &InventoryEvent) -> Option<Stock> {
        evolve(state, event)
    }

    fn is_terminal(_: &Option<Stock>) -> bool {
        // Stock can always be restocked.
        false
    }
}
