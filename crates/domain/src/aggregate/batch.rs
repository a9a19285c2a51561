//! A command's events as one unit: what one Kafka record of `orders.events` holds.
//!
//! One record per command (not per event) makes "all or none" a property of
//! the log itself: a consumer never sees part of a command, and two writers'
//! commands can never interleave inside one.

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::envelope::{DecodeError, Envelope, EventPayload, WireEnvelope, serialize};

/// Each envelope's bytes in a record, where they can stand for the envelope
/// (see [`CommandBatch::decode_keeping_bytes`]).
pub type EnvelopeBytes<'a> = Vec<Option<&'a [u8]>>;

/// What the application layer knows about a command when it appends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandMeta {
    /// The aggregate the command is for.
    pub aggregate_id: Uuid,
    /// Stable across retries of the same command.
    pub command_id: Uuid,
    /// The request or workflow it belongs to.
    pub correlation_id: Uuid,
    /// When it was executed.
    pub occurred_at: DateTime<Utc>,
}

/// Why envelopes do not form one command's batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// A command that produced no event appends nothing.
    #[error("a batch holds at least one event")]
    Empty,
    /// The envelopes disagree on the aggregate, the command or the correlation.
    #[error("event {index} belongs to another aggregate, command or correlation")]
    Mixed {
        /// Position of the first odd one.
        index: usize,
    },
    /// Versions must be consecutive from the first.
    #[error("event {index} has version {found}, expected {expected}")]
    Gap {
        /// Position of the first gap.
        index: usize,
        /// What was expected.
        expected: u64,
        /// What was found.
        found: u64,
    },
}

/// One command's events: non-empty, one aggregate, one command, consecutive
/// versions. Only the constructors make one, so every batch is valid.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandBatch<E> {
    envelopes: Vec<Envelope<E>>,
}

impl<E> CommandBatch<E> {
    /// Wraps decided events as versions `base_version + 1 ..`, each with an id
    /// from `next_event_id` (UUIDv7 in production, counters in tests).
    pub fn new(
        meta: CommandMeta,
        base_version: u64,
        events: Vec<E>,
        mut next_event_id: impl FnMut() -> Uuid,
    ) -> Result<Self, BatchError> {
        let envelopes = (base_version + 1..)
            .zip(events)
            .map(|(version, event)| Envelope {
                event_id: next_event_id(),
                aggregate_id: meta.aggregate_id,
                version,
                occurred_at: meta.occurred_at,
                command_id: meta.command_id,
                correlation_id: meta.correlation_id,
                event,
            })
            .collect();
        Self::from_envelopes(envelopes)
    }

    /// Checks that envelopes form one command's batch.
    pub fn from_envelopes(envelopes: Vec<Envelope<E>>) -> Result<Self, BatchError> {
        let first = envelopes.first().ok_or(BatchError::Empty)?;
        for (index, envelope) in envelopes.iter().enumerate() {
            if (
                envelope.aggregate_id,
                envelope.command_id,
                envelope.correlation_id,
            ) != (first.aggregate_id, first.command_id, first.correlation_id)
            {
                return Err(BatchError::Mixed { index });
            }
            let expected = first.version + index as u64;
            if envelope.version != expected {
                return Err(BatchError::Gap {
                    index,
                    expected,
                    found: envelope.version,
                });
            }
        }
        Ok(Self { envelopes })
    }

    /// The events in order.
    pub fn envelopes(&self) -> &[Envelope<E>] {
        &self.envelopes
    }

    /// Consumes the batch.
    pub fn into_envelopes(self) -> Vec<Envelope<E>> {
        self.envelopes
    }

    fn first(&self) -> &Envelope<E> {
        // Non-empty by construction.
        &self.envelopes[0]
    }

    /// The aggregate, which is also the Kafka key.
    pub fn aggregate_id(&self) -> Uuid {
        self.first().aggregate_id
    }

    /// The command.
    pub fn command_id(&self) -> Uuid {
        self.first().command_id
    }

    /// The version of the first event: valid only if the state is one below.
    pub fn first_version(&self) -> u64 {
        self.first().version
    }

    /// The version of the last event.
    pub fn last_version(&self) -> u64 {
        self.first_version() + self.envelopes.len() as u64 - 1
    }
}

impl<E: EventPayload> CommandBatch<E> {
    /// The batch as the JSON array that is one record's value.
    pub fn encode(&self, aggregate_type: &str) -> Vec<u8> {
        let data: Vec<_> = self
            .envelopes
            .iter()
            .map(|e| e.event.encode_data())
            .collect();
        let wire: Vec<WireEnvelope<'_>> = self
            .envelopes
            .iter()
            .zip(&data)
            .map(|(e, data)| e.to_wire(aggregate_type, data))
            .collect();
        serialize(&wire)
    }

    /// Reads a record's value; anything but a valid batch is an error.
    pub fn decode(bytes: &[u8], aggregate_type: &str) -> Result<Self, DecodeError> {
        Self::decode_keeping_bytes(bytes, aggregate_type).map(|(batch, _)| batch)
    }

    /// [`Self::decode`], also giving each envelope's bytes as the record
    /// holds them, where they are in the current schema (an upcast envelope
    /// has none: its bytes are older than its shape). Whoever passes an
    /// event on can copy those bytes instead of encoding it again.
    pub fn decode_keeping_bytes<'a>(
        bytes: &'a [u8],
        aggregate_type: &str,
    ) -> Result<(Self, EnvelopeBytes<'a>), DecodeError> {
        let malformed = |e: serde_json::Error| DecodeError::Malformed(e.to_string());
        let raw: Vec<&RawValue> = serde_json::from_slice(bytes).map_err(malformed)?;
        let mut envelopes = Vec::with_capacity(raw.len());
        let mut kept = Vec::with_capacity(raw.len());
        for raw in raw {
            let wire: WireEnvelope<'_> = serde_json::from_str(raw.get()).map_err(malformed)?;
            let schema_version = wire.schema_version;
            let envelope = Envelope::<E>::from_wire(wire, aggregate_type)?;
            let current = envelope.event.schema_version() == schema_version;
            kept.push(current.then_some(raw.get().as_bytes()));
            envelopes.push(envelope);
        }
        let batch =
            Self::from_envelopes(envelopes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        Ok((batch, kept))
    }
}
