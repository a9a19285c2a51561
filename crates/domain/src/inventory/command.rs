//! What can be asked of a SKU's stock.

use uuid::Uuid;

use super::{Quantity, Sku};

/// An intention about one SKU's stock, which may be refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InventoryCommand {
    /// Start keeping stock of a SKU, with none on hand.
    Create {
        /// The SKU.
        sku: Sku,
        /// A webhook tells when available units fall below this (0: never).
        low_stock_threshold: u64,
    },
    /// Units arrived.
    Restock {
        /// How many.
        units: Quantity,
    },
    /// Hold units for an order.
    Reserve {
        /// The order they are for.
        order_id: Uuid,
        /// How many.
        units: Quantity,
    },
    /// Give an order's reservation back.
    Release {
        /// The order.
        order_id: Uuid,
    },
    /// The reserved units leave with the order.
    Commit {
        /// The order.
        order_id: Uuid,
    },
}

impl InventoryCommand {
    /// The variant's name.
    pub fn name(&self) -> &'static str {
        match self {
            InventoryCommand::Create { .. } => "Create",
            InventoryCommand::Restock { .. } => "Restock",
            InventoryCommand::Reserve { .. } => "Reserve",
            InventoryCommand::Release { .. } => "Release",
            InventoryCommand::Commit { .. } => "Commit",
        }
    }
}
