//! The inventory's effect: a webhook when a SKU's available units fall below
//! its threshold. Only the event that crosses it sends one, so a SKU that
//! stays low is not announced again until it has been restocked above it.

use domain::inventory::{InventoryAggregate, InventoryEvent, Stock};

use super::{Change, ChangeError, Effect};

/// The webhook's `type`.
pub const LOW_STOCK: &str = "inventory.low_stock";

/// The effects of one change record: `inventory.low_stock` when this event
/// took the available units below the threshold (if webhooks are on).
pub fn effects_of(payload: &[u8], webhooks: bool) -> Result<Vec<Effect>, ChangeError> {
    let (change, envelope) = Change::decode::<InventoryAggregate>(payload)?;
    let crossed = change
        .state
        .as_ref()
        .is_some_and(|stock| fell_below_threshold(stock, &envelope.event));
    if !(webhooks && crossed) {
        return Ok(Vec::new());
    }
    Ok(vec![Effect::webhook::<InventoryAggregate>(
        &envelope,
        LOW_STOCK.to_owned(),
        &change,
    )?])
}

/// True when `event` took `after`'s available units from at least its
/// threshold to below it. Only a reservation lowers the available units.
pub fn fell_below_threshold(after: &Stock, event: &InventoryEvent) -> bool {
    let InventoryEvent::StockReserved { units, .. } = event else {
        return false;
    };
    let before = after.available.saturating_add(*units);
    after.is_low() && before >= after.low_stock_threshold
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use domain::inventory::{InventoryEvent, Sku, Stock};
    use uuid::Uuid;

    use super::fell_below_threshold;

    fn stock(available: u64, threshold: u64) -> Stock {
        Stock {
            sku: Sku::parse("PEN-1").expect("valid"),
            low_stock_threshold: threshold,
            received: 100,
            available,
            reservations: BTreeMap::from([(Uuid::nil(), 100 - available)]),
            shipped: 0,
        }
    }

    fn reserved(units: u64) -> InventoryEvent {
        InventoryEvent::StockReserved {
            order_id: Uuid::nil(),
            units,
        }
    }

    #[test]
    fn only_the_reservation_that_crosses_the_threshold_announces_it() {
        // 6 available, threshold 5: reserving 2 leaves 4, below it.
        assert!(fell_below_threshold(&stock(4, 5), &reserved(2)));
        // From exactly the threshold to below it.
        assert!(fell_below_threshold(&stock(4, 5), &reserved(1)));
        // Already below before: no second announcement.
        assert!(!fell_below_threshold(&stock(2, 5), &reserved(2)));
        // Still at the threshold: not low.
        assert!(!fell_below_threshold(&stock(5, 5), &reserved(3)));
        // No threshold: never.
        assert!(!fell_below_threshold(&stock(0, 0), &reserved(3)));
        // Other events never lower the available units.
        let released = InventoryEvent::ReservationReleased {
            order_id: Uuid::nil(),
            units: 3,
        };
        assert!(!fell_below_threshold(&stock(4, 5), &released));
    }
}
