//! The order's events, their wire names and schema versions, and upcasting.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::values::{CancelReason, Carrier, CustomerId, Email, LineItem, Sku, TrackingNumber};
use crate::aggregate::{DecodeError, EventPayload};

/// A fact about an order. The variant name is the wire's `event_type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "data", deny_unknown_fields)]
pub enum OrderEvent {
    /// The order exists, with its first lines.
    OrderPlaced {
        /// The new order's id.
        order_id: Uuid,
        /// Who placed it.
        customer_id: CustomerId,
        /// Where its e-mails go.
        email: Email,
        /// Its lines, SKUs unique.
        items: Vec<LineItem>,
    },
    /// A line was added, or its quantity raised (same SKU, same price).
    ItemAdded {
        /// The line, or the extra quantity of an existing SKU.
        item: LineItem,
    },
    /// A line was removed.
    ItemRemoved {
        /// The removed line's SKU.
        sku: Sku,
    },
    /// The order was confirmed; lines are final.
    OrderConfirmed {},
    /// The order left the warehouse.
    OrderShipped {
        /// Who carries it.
        carrier: Carrier,
        /// The carrier's tracking number.
        tracking_number: TrackingNumber,
    },
    /// The order reached the customer.
    OrderDelivered {},
    /// The order was cancelled.
    OrderCancelled {
        /// Why.
        reason: CancelReason,
    },
}

/// Every event type with the schema version this code writes. A type missing
/// here is unknown; a version above the one here is from newer code.
const SCHEMAS: &[(&str, u32)] = &[
    ("OrderPlaced", 1),
    // Version 1 had the line's fields at the top level, the price as `price_cents`.
    ("ItemAdded", 2),
    ("ItemRemoved", 1),
    ("OrderConfirmed", 1),
    ("OrderShipped", 1),
    ("OrderDelivered", 1),
    ("OrderCancelled", 1),
];

impl OrderEvent {
    /// Every event type this code reads and writes, with its current schema version.
    pub fn schemas() -> &'static [(&'static str, u32)] {
        SCHEMAS
    }
}

impl EventPayload for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::ItemAdded { .. } => "ItemAdded",
            OrderEvent::ItemRemoved { .. } => "ItemRemoved",
            OrderEvent::OrderConfirmed {} => "OrderConfirmed",
            OrderEvent::OrderShipped { .. } => "OrderShipped",
            OrderEvent::OrderDelivered {} => "OrderDelivered",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
        }
    }

    fn schema_version(&self) -> u32 {
        current_version(self.event_type()).unwrap_or(1)
    }

    fn encode_data(&self) -> Value {
        // Strings, numbers and ids only: serialization cannot fail.
        let mut tagged = serde_json::to_value(self).expect("an order event always serializes");
        tagged
            .get_mut("data")
            .map(Value::take)
            .unwrap_or_else(|| json!({}))
    }

    fn decode_data(
        event_type: &str,
        schema_version: u32,
        data: Value,
    ) -> Result<Self, DecodeError> {
        let known = current_version(event_type).ok_or_else(|| DecodeError::UnknownEventType {
            event_type: event_type.to_owned(),
        })?;
        if schema_version > known {
            return Err(DecodeError::NewerSchema {
                event_type: event_type.to_owned(),
                found: schema_version,
                known,
            });
        }
        let data = upcast(event_type, schema_version, data)?;
        serde_json::from_value(json!({ "event_type": event_type, "data": data }))
            .map_err(|e| DecodeError::Malformed(format!("{event_type} v{schema_version}: {e}")))
    }
}

fn current_version(event_type: &str) -> Option<u32> {
    SCHEMAS
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, version)| *version)
}

/// Brings data of an older schema version to the current shape, one version
/// step at a time, so each step stays small and is written once.
fn upcast(event_type: &str, mut version: u32, mut data: Value) -> Result<Value, DecodeError> {
    if version == 0 {
        return Err(DecodeError::Malformed(format!(
            "{event_type}: schema version 0 does not exist"
        )));
    }
    while Some(version) != current_version(event_type) {
        data = match (event_type, version) {
            ("ItemAdded", 1) => item_added_v1_to_v2(data)?,
            _ => {
                return Err(DecodeError::Malformed(format!(
                    "{event_type} has no schema version {version}"
                )));
            }
        };
        version += 1;
    }
    Ok(data)
}

/// `{sku, quantity, price_cents}` became `{item: {sku, quantity, unit_price_cents}}`.
fn item_added_v1_to_v2(data: Value) -> Result<Value, DecodeError> {
    let Value::Object(mut v1) = data else {
        return Err(DecodeError::Malformed(
            "ItemAdded v1: data is not an object".into(),
        ));
    };
    let mut field = |name: &str| {
        v1.remove(name)
            .ok_or_else(|| DecodeError::Malformed(format!("ItemAdded v1: missing `{name}`")))
    };
    let item = json!({
        "sku": field("sku")?,
        "quantity": field("quantity")?,
        "unit_price_cents": field("price_cents")?,
    });
    if let Some(extra) = v1.keys().next() {
        return Err(DecodeError::Malformed(format!(
            "ItemAdded v1: unknown field `{extra}`"
        )));
    }
    Ok(json!({ "item": item }))
}
