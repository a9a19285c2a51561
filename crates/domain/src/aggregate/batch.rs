//! A command's events as one unit: what one Kafka record of `orders.events` holds.
//!
//! One record per command (not per event) makes "all or none" a property of
//! the log itself: a consumer never sees part of a command, and two writers'
//! commands can never interleave inside one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::envelope::{DecodeError, Envelope, EventPayload, WireEnvelope, serialize};

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
        let wire: Vec<WireEnvelope> = self
            .envelopes
            .iter()
            .map(|e| e.to_wire(aggregate_type))
            .collect();
        serialize(&wire)
    }

    /// Reads a record's value; anything but a valid batch is an error.
    pub fn decode(bytes: &[u8], aggregate_type: &str) -> Result<Self, DecodeError> {
        let wire: Vec<WireEnvelope> =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let envelopes = wire
            .into_iter()
            .map(|w| Envelope::from_wire(w, aggregate_type))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_envelopes(envelopes).map_err(|e| DecodeError::Malformed(e.to_string()))
    }
}
