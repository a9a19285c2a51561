//! Why `decide` refused a command.

use super::state::Status;
use super::values::{MAX_LINES, Quantity, Sku};
use crate::aggregate::{ErrorKind, Refusal};

/// A broken rule, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// `Place` for an id that is taken.
    #[error("an order with this id already exists")]
    AlreadyExists,
    /// Any other command before the order was placed.
    #[error("no such order")]
    NotFound,
    /// The command does not apply in the order's status.
    #[error("cannot {verb} an order that is {status}{hint}")]
    IllegalTransition {
        /// What was attempted.
        verb: &'static str,
        /// The order's status.
        status: Status,
        /// What would make it legal, when something would.
        hint: &'static str,
    },
    /// `Place` with no lines.
    #[error("an order needs at least one item")]
    NoItems,
    /// More lines than an order may hold.
    #[error("an order holds at most {MAX_LINES} lines")]
    TooManyLines,
    /// `Place` listing a SKU twice.
    #[error("sku {0} is listed twice; list each sku once with its total quantity")]
    DuplicateSku(Sku),
    /// `Ship` before every line's units are reserved in the inventory.
    #[error(
        "cannot ship an order whose stock is not reserved yet; the fulfilment workflow reserves it once the order is confirmed"
    )]
    StockNotReserved,
    /// Removing a SKU the order does not have.
    #[error("sku {0} is not in this order")]
    SkuNotInOrder(Sku),
    /// Removing the only line.
    #[error("cannot remove the last line of an order; cancel the order instead")]
    LastLine,
    /// Adding a SKU that is already there at another price.
    #[error(
        "sku {sku} is already in this order at {existing_cents} cents per unit; add it at that price or remove it first"
    )]
    PriceMismatch {
        /// The SKU.
        sku: Sku,
        /// The price on the order.
        existing_cents: u64,
    },
    /// Adding to a SKU beyond the quantity limit.
    #[error(
        "sku {sku} would reach quantity {total}, above the limit of {}",
        Quantity::MAX
    )]
    QuantityLimit {
        /// The SKU.
        sku: Sku,
        /// The quantity it would have.
        total: u64,
    },
    /// The total would not fit in the amounts this system handles.
    #[error("the order total would be too large")]
    TotalTooLarge,
}

impl Refusal for OrderError {
    /// Invalid: the command breaks a rule whatever the order's state (the
    /// request is at fault). Conflict or not found: the order's state
    /// refuses it (the same request may succeed on another order).
    fn kind(&self) -> ErrorKind {
        match self {
            OrderError::NotFound | OrderError::SkuNotInOrder(_) => ErrorKind::NotFound,
            OrderError::AlreadyExists
            | OrderError::IllegalTransition { .. }
            | OrderError::StockNotReserved
            | OrderError::LastLine
            | OrderError::PriceMismatch { .. }
            | OrderError::QuantityLimit { .. } => ErrorKind::Conflict,
            OrderError::NoItems
            | OrderError::TooManyLines
            | OrderError::DuplicateSku(_)
            | OrderError::TotalTooLarge => ErrorKind::Invalid,
        }
    }
}
