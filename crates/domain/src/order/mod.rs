//! The order aggregate.
//!
//! ```text
//!            place
//!              │
//!              ▼
//!   add/remove ┌────────┐ cancel  ┌───────────┐
//!   items ───▶ │ placed │───────▶ │ cancelled │
//!              └────────┘         └───────────┘
//!                  │ confirm            ▲
//!                  ▼                    │ cancel
//!             ┌───────────┐─────────────┘
//!             │ confirmed │
//!             └───────────┘
//!                  │ ship (carrier, tracking number)
//!                  ▼
//!             ┌─────────┐  deliver  ┌───────────┐
//!             │ shipped │─────────▶ │ delivered │
//!             └─────────┘           └───────────┘
//! ```
//!
//! `delivered` and `cancelled` are final. Lines change only while `placed`;
//! the last line cannot be removed. Limits: 1 to 100 lines, each SKU once,
//! quantity 1 to 10,000, unit price 0 to 100,000,000 cents; totals are
//! computed with checked arithmetic.

mod command;
mod decide;
mod error;
mod event;
mod state;
mod values;

pub use command::OrderCommand;
pub use decide::decide;
pub use error::OrderError;
pub use event::OrderEvent;
pub use state::{Order, Shipment, Status, evolve};
pub use values::{
    CancelReason, Carrier, CustomerId, Email, LineItem, MAX_LINES, Quantity, Sku, TrackingNumber,
    UnitPrice, ValueError,
};

use crate::aggregate::Aggregate;

/// The order aggregate type: plugs the functions of this module into the
/// generic machinery.
#[derive(Debug)]
pub enum OrderAggregate {}

impl Aggregate for OrderAggregate {
    const TYPE: &'static str = "order";
    type State = Option<Order>;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn command_name(command: &OrderCommand) -> &'static str {
        command.name()
    }

    fn decide(
        command: &OrderCommand,
        state: &Option<Order>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        decide(command, state)
    }

    fn evolve(state: Option<Order>, event: &OrderEvent) -> Option<Order> {
        evolve(state, event)
    }

    fn is_terminal(state: &Option<Order>) -> bool {
        state.as_ref().is_some_and(Order::is_terminal)
    }
}
