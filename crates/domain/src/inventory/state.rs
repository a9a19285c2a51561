//! The stock of one SKU, and `evolve`: how each fact changes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{InventoryEvent, Sku};

/// The most units one SKU's counts may reach.
pub const MAX_UNITS: u64 = 1_000_000_000;

/// One SKU's stock. `received = available + reserved + shipped` always.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// The SKU.
    pub sku: Sku,
    /// A webhook tells when available units fall below this (0: never).
    pub low_stock_threshold: u64,
    /// Every unit that ever arrived.
    pub received: u64,
    /// Units on hand and free.
    pub available: u64,
    /// Units held, per order.
    pub reservations: BTreeMap<Uuid, u64>,
    /// Units that left with their orders.
    pub shipped: u64,
}

impl Stock {
    /// Units held for orders.
    pub fn reserved(&self) -> u64 {
        self.reservations.values().sum()
    }

    /// True when the available units are below the threshold.
    pub fn is_low(&self) -> bool {
        self.available < self.low_stock_threshold
    }
}

/// The state after an event. Total: `decide` only emits events that keep the
/// counts within range, and the arithmetic saturates rather than fail on a
/// log it did not write.
pub fn evolve(state: Option<Stock>, event: &InventoryEvent) -> Option<Stock> {
    if let InventoryEvent::StockCreated {
        sku,
        low_stock_threshold,
    } = event
    {
        return Some(state.unwrap_or(Stock {
            sku: sku.clone(),
            low_stock_threshold: *low_stock_threshold,
            received: 0,
            available: 0,
            reservations: BTreeMap::new(),
            shipped: 0,
        }));
    }
    let mut stock = state?;
    match event {
        InventoryEvent::StockCreated { .. } => {}
        InventoryEvent::StockReceived { units } => {
            stock.received = stock.received.saturating_add(*units);
            stock.available = stock.available.saturating_add(*units);
        }
        InventoryEvent::StockReserved { order_id, units } => {
            let units = (*units).min(stock.available);
            stock.available -= units;
            *stock.reservations.entry(*order_id).or_default() += units;
        }
        InventoryEvent::ReservationReleased { order_id, .. } => {
            let units = stock.reservations.remove(order_id).unwrap_or(0);
            stock.available += units;
        }
        InventoryEvent::ReservationCommitted { order_id, .. } => {
            let units = stock.reservations.remove(order_id).unwrap_or(0);
            stock.shipped += units;
        }
    }
    Some(stock)
}
