//! Why `decide` refused an inventory command.

use uuid::Uuid;

use crate::aggregate::{ErrorKind, Refusal};

/// A broken rule, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// `Create` for a SKU that has stock already.
    #[error("stock of this sku already exists")]
    AlreadyExists,
    /// Any other command before the stock was created.
    #[error("no stock of this sku")]
    NotFound,
    /// `Reserve` for more than is available.
    #[error("only {available} units are available, {requested} were asked for")]
    Insufficient {
        /// Units available now.
        available: u64,
        /// Units asked for.
        requested: u64,
    },
    /// `Reserve` for an order that holds a reservation already.
    #[error("order {0} holds a reservation of this sku already; release it first")]
    AlreadyReserved(Uuid),
    /// `Release` or `Commit` for an order that holds no reservation.
    #[error("order {0} holds no reservation of this sku")]
    NoReservation(Uuid),
    /// More units than the counts this system handles.
    #[error("the stock would exceed {} units", super::state::MAX_UNITS)]
    TooMuchStock,
}

impl Refusal for InventoryError {
    fn kind(&self) -> ErrorKind {
        match self {
            InventoryError::NotFound => ErrorKind::NotFound,
            InventoryError::AlreadyExists
            | InventoryError::Insufficient { .. }
            | InventoryError::AlreadyReserved(_)
            | InventoryError::NoReservation(_) => ErrorKind::Conflict,
            InventoryError::TooMuchStock => ErrorKind::Invalid,
        }
    }
}
