//! What a user may ask of an order.

use uuid::Uuid;

use super::values::{CancelReason, Carrier, CustomerId, Email, LineItem, Sku, TrackingNumber};

/// An intention; `decide` accepts or refuses it. Values inside are already
/// valid (parsed); the rules that need the state are `decide`'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderCommand {
    /// Create the order with its first lines.
    Place {
        /// The new order's id, chosen by the caller (the application layer).
        order_id: Uuid,
        /// Who places it.
        customer_id: CustomerId,
        /// Where its e-mails go.
        email: Email,
        /// 1 to 100 lines, each SKU once.
        items: Vec<LineItem>,
    },
    /// Add a line, or raise the quantity of a SKU already there (same price).
    AddItem {
        /// The line.
        item: LineItem,
    },
    /// Remove a line (never the last one).
    RemoveItem {
        /// Its SKU.
        sku: Sku,
    },
    /// `placed` → `confirmed`.
    Confirm,
    /// Record that every line's units are reserved (the fulfilment
    /// workflow's step, while `confirmed`; again, it changes nothing).
    RecordStockReserved,
    /// `confirmed` → `shipped`.
    Ship {
        /// Who carries it.
        carrier: Carrier,
        /// The carrier's tracking number.
        tracking_number: TrackingNumber,
    },
    /// `shipped` → `delivered`.
    Deliver,
    /// `placed` or `confirmed` → `cancelled`.
    Cancel {
        /// Why.
        reason: CancelReason,
    },
}

impl OrderCommand {
    /// The variant's name.
    pub fn name(&self) -> &'static str {
        match self {
            OrderCommand::Place { .. } => "Place",
            OrderCommand::AddItem { .. } => "AddItem",
            OrderCommand::RemoveItem { .. } => "RemoveItem",
            OrderCommand::Confirm => "Confirm",
            OrderCommand::RecordStockReserved => "RecordStockReserved",
            OrderCommand::Ship { .. } => "Ship",
            OrderCommand::Deliver => "Deliver",
            OrderCommand::Cancel { .. } => "Cancel",
        }
    }

    /// The verb messages use ("cannot ship an order that is placed").
    pub fn verb(&self) -> &'static str {
        match self {
            OrderCommand::Place { .. } => "place",
            OrderCommand::AddItem { .. } => "add items to",
            OrderCommand::RemoveItem { .. } => "remove items from",
            OrderCommand::Confirm => "confirm",
            OrderCommand::RecordStockReserved => "record stock reserved for",
            OrderCommand::Ship { .. } => "ship",
            OrderCommand::Deliver => "deliver",
            OrderCommand::Cancel { .. } => "cancel",
        }
    }
}
