//! Which side effects an accepted event causes. Pure: a change in, effects out.

use domain::aggregate::{Envelope, EventPayload};
use domain::order::{Order, OrderEvent};
use serde::Deserialize;
use uuid::Uuid;

/// A record of `orders.changes`: an accepted event and the state after it.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// The event's wire envelope.
    pub event: serde_json::Value,
    /// The order after the event.
    pub state: Option<Order>,
}

/// The kinds of side effect; each has its own delivery mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An e-mail to the customer.
    Email,
    /// A signed webhook to the configured endpoint.
    Webhook,
}

impl Kind {
    /// The name in effect ids, the effects table and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Webhook => "webhook",
        }
    }
}

/// One side effect to perform.
#[derive(Clone, Debug)]
pub struct Effect {
    /// `<kind>:<event id>`: stable across replays, the idempotency key.
    pub id: String,
    /// What to do.
    pub kind: Kind,
    /// The order.
    pub order_id: Uuid,
    /// The event that caused it.
    pub event_id: Uuid,
    /// The event type (`OrderShipped`).
    pub event_type: &'static str,
    /// For e-mail: the recipient, subject and text.
    pub email: Option<Email>,
    /// For webhooks: the JSON body.
    pub body: Vec<u8>,
}

/// An e-mail's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    /// The customer's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain text.
    pub text: String,
}

/// Why a change could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a change record: {0}")]
pub struct ChangeError(String);

/// The effects of one change record: a webhook for every accepted event (if
/// webhooks are on), an e-mail when the customer should hear of it.
pub fn effects_of(payload: &[u8], webhooks: bool) -> Result<Vec<Effect>, ChangeError> {
    let change: Change = serde_json::from_slice(payload).map_err(|e| ChangeError(e.to_string()))?;
    let envelope_bytes =
        serde_json::to_vec(&change.event).map_err(|e| ChangeError(e.to_string()))?;
    let envelope = Envelope::<OrderEvent>::decode(&envelope_bytes, "order")
        .map_err(|e| ChangeError(e.to_string()))?;
    let event_type = envelope.event.event_type();
    let mut effects = Vec::new();
    if let (Some(order), Some(email)) = (&change.state, email_for(&envelope)) {
        effects.push(Effect {
            id: format!("email:{}", envelope.event_id),
            kind: Kind::Email,
            order_id: envelope.aggregate_id,
            event_id: envelope.event_id,
            event_type,
            email: Some(Email {
                to: order.email.to_string(),
                subject: email.0,
                text: email.1,
            }),
            body: Vec::new(),
        });
    }
    if webhooks {
        let body = serde_json::json!({
            "type": format!("order.{}", event_type.trim_start_matches("Order").to_lowercase()),
            "timestamp": envelope.occurred_at,
            "data": { "event": change.event, "state": change.state },
        });
        effects.push(Effect {
            id: format!("webhook:{}", envelope.event_id),
            kind: Kind::Webhook,
            order_id: envelope.aggregate_id,
            event_id: envelope.event_id,
            event_type,
            email: None,
            body: serde_json::to_vec(&body).map_err(|e| ChangeError(e.to_string()))?,
        });
    }
    Ok(effects)
}

/// Subject and text of the e-mail an event sends, if it sends one.
fn email_for(envelope: &Envelope<OrderEvent>) -> Option<(String, String)> {
    let id = envelope.aggregate_id;
    match &envelope.event {
        OrderEvent::OrderPlaced { .. } => Some((
            format!("Order {id} received"),
            format!("Thank you: we have your order {id}."),
        )),
        OrderEvent::OrderShipped {
            carrier,
            tracking_number,
        } => Some((
            format!("Order {id} shipped"),
            format!(
                "Your order {id} is on its way with {carrier}, tracking number {tracking_number}."
            ),
        )),
        OrderEvent::OrderCancelled { reason } => Some((
            format!("Order {id} cancelled"),
            format!("Your order {id} was cancelled: {reason}."),
        )),
        _ => None,
    }
}
