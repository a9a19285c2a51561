//! The inventory's events, their wire names and schema versions.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Sku;
use crate::aggregate::schemas::{Schemas, TaggedEvent};

/// A fact about one SKU's stock. The variant name is the wire's `event_type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "data", deny_unknown_fields)]
pub enum InventoryEvent {
    /// Stock of the SKU is kept from now on, none on hand.
    StockCreated {
        /// The SKU.
        sku: Sku,
        /// A webhook tells when available units fall below this (0: never).
        low_stock_threshold: u64,
    },
    /// Units arrived.
    StockReceived {
        /// How many.
        units: u64,
    },
    /// Units are held for an order.
    StockReserved {
        /// The order.
        order_id: Uuid,
        /// How many.
        units: u64,
    },
    /// An order's reservation was given back.
    ReservationReleased {
        /// The order.
        order_id: Uuid,
        /// How many units it held.
        units: u64,
    },
    /// An order's reserved units left with it.
    ReservationCommitted {
        /// The order.
        order_id: Uuid,
        /// How many units it held.
        units: u64,
    },
}

impl TaggedEvent for InventoryEvent {
    const SCHEMAS: Schemas = &[
        ("StockCreated", 1),
        ("StockReceived", 1),
        ("StockReserved", 1),
        ("ReservationReleased", 1),
        ("ReservationCommitted", 1),
    ];

    fn name(&self) -> &'static str {
        match self {
            InventoryEvent::StockCreated { .. } => "StockCreated",
            InventoryEvent::StockReceived { .. } => "StockReceived",
            InventoryEvent::StockReserved { .. } => "StockReserved",
            InventoryEvent::ReservationReleased { .. } => "ReservationReleased",
            InventoryEvent::ReservationCommitted { .. } => "ReservationCommitted",
        }
    }
}
