//! The order's events, their wire names and schema versions, and upcasting.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::values::{CancelReason, Carrier, CustomerId, Email, LineItem, Sku, TrackingNumber};
use crate::aggregate::DecodeError;
use crate::aggregate::schemas::{self, Schemas, TaggedEvent};

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
    /// Every line's units are reserved in the inventory: it may ship.
    OrderStockReserved {},
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

impl TaggedEvent for OrderEvent {
    const SCHEMAS: Schemas = &[
        ("OrderPlaced", 1),
        // Version 1 had the line's fields at the top level, the price as `price_cents`.
        ("ItemAdded", 2),
        ("ItemRemoved", 1),
        ("OrderConfirmed", 1),
        ("OrderStockReserved", 1),
        ("OrderShipped", 1),
        ("OrderDelivered", 1),
        ("OrderCancelled", 1),
    ];

    fn name(&self) -> &'static str {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::ItemAdded { .. } => "ItemAdded",
            OrderEvent::ItemRemoved { .. } => "ItemRemoved",
            OrderEvent::OrderConfirmed {} => "OrderConfirmed",
            OrderEvent::OrderStockReserved {} => "OrderStockReserved",
            OrderEvent::OrderShipped { .. } => "OrderShipped",
            OrderEvent::OrderDelivered {} => "OrderDelivered",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
        }
    }

    fn upcast(event_type: &str, version: u32, data: Value) -> Result<Value, DecodeError> {
        match (event_type, version) {
            ("ItemAdded", 1) => item_added_v1_to_v2(data),
            _ => schemas::no_upcasts(event_type, version, data),
        }
    }
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
