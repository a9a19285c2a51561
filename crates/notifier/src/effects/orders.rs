//! The orders' effects: an e-mail when the customer should hear of an
//! event, a webhook for every accepted event.

use domain::aggregate::{Envelope, EventPayload};
use domain::order::{OrderAggregate, OrderEvent};

use super::{Change, ChangeError, Effect, Email, Kind};

/// The effects of one change record: a webhook for every accepted event (if
/// webhooks are on), an e-mail when the customer should hear of it.
pub fn effects_of(payload: &[u8], webhooks: bool) -> Result<Vec<Effect>, ChangeError> {
    let (change, envelope) = Change::decode::<OrderAggregate>(payload)?;
    let event_type = envelope.event.event_type();
    let mut effects = Vec::new();
    if let (Some(order), Some(email)) = (&change.state, email_for(&envelope)) {
        effects.push(Effect {
            id: format!("email:{}", envelope.event_id),
            kind: Kind::Email,
            entity_type: "order".to_owned(),
            entity_id: envelope.aggregate_id,
            event_id: envelope.event_id,
            event_type: event_type.to_owned(),
            email: Some(Email {
                to: order.email.to_string(),
                subject: email.0,
                text: email.1,
            }),
            body: Vec::new(),
            traceparent: None,
        });
    }
    if webhooks {
        let webhook_type = format!(
            "order.{}",
            event_type.trim_start_matches("Order").to_lowercase()
        );
        effects.push(Effect::webhook::<OrderAggregate>(
            &envelope,
            webhook_type,
            &change,
        )?);
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
