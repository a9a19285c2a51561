//! The event envelope and its JSON wire format (a contract: see the golden
//! files in `tests/golden/`), with upcasting of older schema versions on read.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// An event's payload as it goes on the wire: a type name, a schema version
/// per type, and JSON data. Decoding upcasts older schema versions.
pub trait EventPayload: Sized {
    /// The event type's name (`"OrderPlaced"`).
    fn event_type(&self) -> &'static str;
    /// The schema version this code writes for this event's type.
    fn schema_version(&self) -> u32;
    /// The data in the current schema, as JSON text.
    fn encode_data(&self) -> Box<RawValue>;
    /// Reads data written with `schema_version` of `event_type`, upcasting
    /// older versions to the current shape.
    fn decode_data(
        event_type: &str,
        schema_version: u32,
        data: &RawValue,
    ) -> Result<Self, DecodeError>;
}

/// Why bytes could not be read as events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not an envelope of this aggregate type at all: poison, to the dead-letter topic.
    #[error("not a valid event envelope: {0}")]
    Malformed(String),
    /// An event type this code does not know: written by newer code.
    #[error("unknown event type `{event_type}`: this code is older than the writer")]
    UnknownEventType {
        /// The type found.
        event_type: String,
    },
    /// A schema version newer than this code knows.
    #[error("`{event_type}` has schema version {found}, but this code knows at most {known}")]
    NewerSchema {
        /// The event type.
        event_type: String,
        /// The version found.
        found: u32,
        /// The newest version this code reads.
        known: u32,
    },
}

impl DecodeError {
    /// True when the record is valid but needs newer code: skipping it would
    /// corrupt state, so the consumer must stop its partition instead of
    /// dead-lettering it.
    pub fn needs_newer_code(&self) -> bool {
        !matches!(self, DecodeError::Malformed(_))
    }
}

/// One event with everything a consumer needs to order and trace it.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope<E> {
    /// Unique per event (UUIDv7: time-ordered).
    pub event_id: Uuid,
    /// The aggregate (the order) it belongs to; also the Kafka key.
    pub aggregate_id: Uuid,
    /// 1 for the aggregate's first event, then gapless.
    pub version: u64,
    /// When the command that produced it was executed.
    pub occurred_at: DateTime<Utc>,
    /// The command that produced it; retries reuse it.
    pub command_id: Uuid,
    /// The request or workflow it is part of.
    pub correlation_id: Uuid,
    /// The fact itself.
    pub event: E,
}

/// The wire shape: field order here is the byte order of the JSON. Read, it
/// borrows from the record's bytes: the data stays JSON text until the
/// event's own type reads it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireEnvelope<'a> {
    pub event_id: Uuid,
    #[serde(borrow)]
    pub aggregate_type: Cow<'a, str>,
    pub aggregate_id: Uuid,
    pub version: u64,
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    #[serde(borrow)]
    pub data: &'a RawValue,
}

impl<E: EventPayload> Envelope<E> {
    /// The wire shape of this envelope with its encoded `data`.
    pub(crate) fn to_wire<'a>(
        &self,
        aggregate_type: &'a str,
        data: &'a RawValue,
    ) -> WireEnvelope<'a> {
        WireEnvelope {
            event_id: self.event_id,
            aggregate_type: Cow::Borrowed(aggregate_type),
            aggregate_id: self.aggregate_id,
            version: self.version,
            event_type: Cow::Borrowed(self.event.event_type()),
            schema_version: self.event.schema_version(),
            occurred_at: self.occurred_at,
            command_id: self.command_id,
            correlation_id: self.correlation_id,
            data,
        }
    }

    pub(crate) fn from_wire(
        wire: WireEnvelope<'_>,
        aggregate_type: &str,
    ) -> Result<Self, DecodeError> {
        if wire.aggregate_type != aggregate_type {
            return Err(DecodeError::Malformed(format!(
                "aggregate type `{}` where `{aggregate_type}` was expected",
                wire.aggregate_type
            )));
        }
        if wire.version == 0 {
            return Err(DecodeError::Malformed(
                "version 0: versions start at 1".into(),
            ));
        }
        Ok(Self {
            event: E::decode_data(&wire.event_type, wire.schema_version, wire.data)?,
            event_id: wire.event_id,
            aggregate_id: wire.aggregate_id,
            version: wire.version,
            occurred_at: wire.occurred_at,
            command_id: wire.command_id,
            correlation_id: wire.correlation_id,
        })
    }

    /// The envelope as JSON bytes: the format of one record of `orders.changes`.
    pub fn encode(&self, aggregate_type: &str) -> Vec<u8> {
        let data = self.event.encode_data();
        serialize(&self.to_wire(aggregate_type, &data))
    }

    /// Reads one envelope written by [`Self::encode`], upcasting old schemas.
    pub fn decode(bytes: &[u8], aggregate_type: &str) -> Result<Self, DecodeError> {
        let wire: WireEnvelope =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        Self::from_wire(wire, aggregate_type)
    }
}

pub(crate) fn serialize<T: Serialize>(value: &T) -> Vec<u8> {
    // Only structs with string keys, numbers and JSON values reach here, which
    // serde_json always serializes.
    serde_json::to_vec(value).expect("serializing an envelope cannot fail")
}
