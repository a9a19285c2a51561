//! `decide`: every rule of the stock, in one place.

use uuid::Uuid;

use super::state::MAX_UNITS;
use super::{InventoryCommand, InventoryError, InventoryEvent, Stock};

/// The events a command produces on the stock, or why it is refused.
pub fn decide(
    command: &InventoryCommand,
    state: &Option<Stock>,
) -> Result<Vec<InventoryEvent>, InventoryError> {
    use InventoryCommand as C;
    let event = match (command, state) {
        (
            C::Create {
                sku,
                low_stock_threshold,
            },
            None,
        ) => InventoryEvent::StockCreated {
            sku: sku.clone(),
            low_stock_threshold: (*low_stock_threshold).min(MAX_UNITS),
        },
        (C::Create { .. }, Some(_)) => return Err(InventoryError::AlreadyExists),
        (_, None) => return Err(InventoryError::NotFound),
        (C::Restock { units }, Some(stock)) => {
            let units = u64::from(*units);
            if stock.received.saturating_add(units) > MAX_UNITS {
                return Err(InventoryError::TooMuchStock);
            }
            InventoryEvent::StockReceived { units }
        }
        (C::Reserve { order_id, units }, Some(stock)) => {
            let units = u64::from(*units);
            if stock.reservations.contains_key(order_id) {
                return Err(InventoryError::AlreadyReserved(*order_id));
            }
            if units > stock.available {
                return Err(InventoryError::Insufficient {
                    available: stock.available,
                    requested: units,
                });
            }
            InventoryEvent::StockReserved {
                order_id: *order_id,
                units,
            }
        }
        (C::Release { order_id }, Some(stock)) => InventoryEvent::ReservationReleased {
            order_id: *order_id,
            units: held(stock, order_id)?,
        },
        (C::Commit { order_id }, Some(stock)) => InventoryEvent::ReservationCommitted {
            order_id: *order_id,
            units: held(stock, order_id)?,
        },
    };
    Ok(vec![event])
}

/// The units `order_id` holds, or the refusal for an order that holds none.
fn held(stock: &Stock, order_id: &Uuid) -> Result<u64, InventoryError> {
    stock
        .reservations
        .get(order_id)
        .copied()
        .ok_or(InventoryError::NoReservation(*order_id))
}
