//! The inventory's events, their wire names and schema versions.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Sku;
use crate::aggregate::schemas::{self, Schemas};
use crate::aggregate::{DecodeError, EventPayload};

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

/// Every event type with the schema version this code writes.
const SCHEMAS: Schemas = &[
    ("StockCreated", 1),
    ("StockReceived", 1),
    ("StockReserved", 1),
    ("ReservationReleased", 1),
    ("ReservationCommitted", 1),
];

impl InventoryEvent {
    /// Every event type this code reads and writes, with its current schema version.
    pub fn schemas() -> Schemas {
        SCHEMAS
    }
}

impl EventPayload for InventoryEvent {
    fn event_type(&self) -> &'static str {
        match self {
            InventoryEvent::StockCreated { .. } => "StockCreated",
            InventoryEvent::StockReceived { .. } => "StockReceived",
            InventoryEvent::StockReserved { .. } => "StockReserved",
            InventoryEvent::ReservationReleased { .. } => "ReservationReleased",
            InventoryEvent::ReservationCommitted { .. } => "ReservationCommitted",
        }
    }

    fn schema_version(&self) -> u32 {
        schemas::current_version(SCHEMAS, self.event_type()).unwrap_or(1)
    }

    fn encode_data(&self) -> Value {
        schemas::encode_data(self)
    }

    fn decode_data(
        event_type: &str,
        schema_version: u32,
        data: Value,
    ) -> Result<Self, DecodeError> {
        schemas::decode_data(
            SCHEMAS,
            schemas::no_upcasts,
            event_type,
            schema_version,
            data,
        )
    }
}
