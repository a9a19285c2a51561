//! Which side effects an accepted event causes. Pure: a change in, effects
//! out, per entity type ([`orders`], [`inventory`]); the [`Source`] of each
//! is one line in [`sources`].

pub mod inventory;
pub mod orders;

use domain::aggregate::{Aggregate, Envelope};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// A record of a `.changes` topic: an accepted event and the state after it.
#[derive(Debug, Deserialize)]
#[serde(bound = "S: DeserializeOwned")]
pub struct Change<S> {
    /// The event's wire envelope.
    pub event: serde_json::Value,
    /// The entity after the event.
    pub state: S,
}

impl<S: DeserializeOwned> Change<S> {
    /// Reads a change record of aggregate `A` and decodes its envelope.
    pub fn decode<A: Aggregate<State = S>>(
        payload: &[u8],
    ) -> Result<(Self, Envelope<A::Event>), ChangeError> {
        let change: Self = serde_json::from_slice(payload).map_err(ChangeError::new)?;
        let bytes = serde_json::to_vec(&change.event).map_err(ChangeError::new)?;
        let envelope = Envelope::<A::Event>::decode(&bytes, A::TYPE).map_err(ChangeError::new)?;
        Ok((change, envelope))
    }
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

    /// The kind named `name` in the effects table.
    pub fn parse(name: &str) -> Option<Self> {
        [Kind::Email, Kind::Webhook]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// One side effect to perform.
#[derive(Clone, Debug)]
pub struct Effect {
    /// `<kind>:<event id>`: stable across replays, the idempotency key.
    pub id: String,
    /// What to do.
    pub kind: Kind,
    /// The entity type whose event caused it (`order`, `inventory`).
    pub entity_type: String,
    /// The entity.
    pub entity_id: Uuid,
    /// The event that caused it.
    pub event_id: Uuid,
    /// The event type (`OrderShipped`).
    pub event_type: String,
    /// For e-mail: the recipient, subject and text.
    pub email: Option<Email>,
    /// For webhooks: the JSON body.
    pub body: Vec<u8>,
    /// The W3C `traceparent` of this effect's span, in the trace of the
    /// request that caused the event: sent with the webhook and in the
    /// e-mail's headers. Set by ingest from the change record's header.
    pub traceparent: Option<String>,
}

impl Effect {
    /// A webhook for `envelope`'s event of type `webhook_type`
    /// (`order.shipped`), its body the event and the state after it.
    pub fn webhook<A: Aggregate>(
        envelope: &Envelope<A::Event>,
        webhook_type: String,
        change: &Change<A::State>,
    ) -> Result<Self, ChangeError> {
        use domain::aggregate::EventPayload;
        let body = serde_json::json!({
            "type": webhook_type,
            "timestamp": envelope.occurred_at,
            "data": { "event": change.event, "state": change.state },
        });
        Ok(Effect {
            id: format!("webhook:{}", envelope.event_id),
            kind: Kind::Webhook,
            entity_type: A::TYPE.to_owned(),
            entity_id: envelope.aggregate_id,
            event_id: envelope.event_id,
            event_type: envelope.event.event_type().to_owned(),
            email: None,
            body: serde_json::to_vec(&body).map_err(ChangeError::new)?,
            traceparent: None,
        })
    }
}

/// An e-mail's content.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
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

impl ChangeError {
    fn new(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}

/// The effects of one change record of an entity type; `webhooks` is false
/// when no endpoint is configured.
pub type EffectsOf = fn(payload: &[u8], webhooks: bool) -> Result<Vec<Effect>, ChangeError>;

/// An entity type whose changes cause effects.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    /// Its name, which names its topics (see `TopicArgs::entity_prefix`).
    pub entity: &'static str,
    /// Its effects.
    pub effects_of: EffectsOf,
}

/// Every entity type the notifier follows, one line each.
pub fn sources() -> [Source; 2] {
    [
        Source {
            entity: "orders",
            effects_of: orders::effects_of,
        },
        Source {
            entity: "inventory",
            effects_of: inventory::effects_of,
        },
    ]
}
