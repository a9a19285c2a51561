//! The shared validation rule: the "validate" step of the write path.
//!
//! Kafka has no conditional append, so every consumer folds a partition in log
//! order and judges each command's batch with [`Snapshot::apply`]. The verdict
//! depends only on the log, so every consumer reaches the same one.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Aggregate, CommandBatch, Envelope};

/// How many accepted command ids a snapshot remembers to recognise a
/// duplicate append (a writer retrying a command it already appended).
pub const RECENT_COMMANDS: usize = 16;

/// An aggregate's state with what the validation rule needs: its version and
/// the ids of its latest accepted commands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot<S> {
    /// The folded state.
    pub state: S,
    /// How many events were accepted: 0 before the first.
    pub version: u64,
    /// When the first accepted event occurred.
    pub created_at: Option<DateTime<Utc>>,
    /// When the last accepted event occurred.
    pub updated_at: Option<DateTime<Utc>>,
    recent_commands: VecDeque<Uuid>,
}

impl<S: Default> Default for Snapshot<S> {
    fn default() -> Self {
        Self {
            state: S::default(),
            version: 0,
            created_at: None,
            updated_at: None,
            recent_commands: VecDeque::new(),
        }
    }
}

/// What the log made of one command's batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The events are facts now, with these versions.
    Accepted {
        /// Version of the first event.
        first_version: u64,
        /// Version of the last event.
        last_version: u64,
    },
    /// Another command got there first: the batch was decided on a stale state.
    Conflict {
        /// The first version the batch needed to carry.
        expected_version: u64,
        /// The first version it carried.
        found_version: u64,
    },
    /// This command was accepted before; the repeat changes nothing.
    Duplicate,
}

impl Verdict {
    /// Its name on the wire (`accepted`, `conflict`, `duplicate`).
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Accepted { .. } => "accepted",
            Verdict::Conflict { .. } => "conflict",
            Verdict::Duplicate => "duplicate",
        }
    }
}

impl<S> Snapshot<S> {
    /// The rule: a batch is accepted, all or none, only if its first version
    /// is exactly one above the snapshot's; a command already accepted is a
    /// duplicate. Duplicates are checked first, since a retried command
    /// carries versions decided on a newer state.
    pub fn judge<E>(&self, batch: &CommandBatch<E>) -> Verdict {
        if self.recent_commands.contains(&batch.command_id()) {
            return Verdict::Duplicate;
        }
        let expected_version = self.version + 1;
        if batch.first_version() == expected_version {
            Verdict::Accepted {
                first_version: batch.first_version(),
                last_version: batch.last_version(),
            }
        } else {
            Verdict::Conflict {
                expected_version,
                found_version: batch.first_version(),
            }
        }
    }

    /// The ids of the latest accepted commands, oldest first.
    pub fn recent_commands(&self) -> impl Iterator<Item = &Uuid> {
        self.recent_commands.iter()
    }

    /// The bytes `serde_json::to_vec(self)` gives, with the state already
    /// encoded as `state` (the fold encodes it once, for the change record,
    /// and reuses it here).
    pub fn encode_with_state(&self, state: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(state.len() + 160 + 39 * self.recent_commands.len());
        out.extend_from_slice(b"{\"state\":");
        out.extend_from_slice(state);
        out.extend_from_slice(b",\"version\":");
        serde_json::to_writer(&mut out, &self.version)?;
        out.extend_from_slice(b",\"created_at\":");
        serde_json::to_writer(&mut out, &self.created_at)?;
        out.extend_from_slice(b",\"updated_at\":");
        serde_json::to_writer(&mut out, &self.updated_at)?;
        out.extend_from_slice(b",\"recent_commands\":");
        serde_json::to_writer(&mut out, &self.recent_commands)?;
        out.push(b'}');
        Ok(out)
    }
}

impl<S: Clone> Snapshot<S> {
    /// Judges a batch and, if it is accepted, folds its events in. A conflict
    /// or a duplicate returns the snapshot unchanged.
    pub fn apply<A: Aggregate<State = S>>(self, batch: &CommandBatch<A::Event>) -> (Self, Verdict) {
        self.apply_observing::<A>(batch, |_, _| {})
    }

    /// [`Self::apply`], calling `on_event` with each accepted event and the
    /// state right after it (what a log of accepted facts records).
    pub fn apply_observing<A: Aggregate<State = S>>(
        mut self,
        batch: &CommandBatch<A::Event>,
        mut on_event: impl FnMut(&Envelope<A::Event>, &S),
    ) -> (Self, Verdict) {
        let verdict = self.judge(batch);
        if let Verdict::Accepted { last_version, .. } = verdict {
            for envelope in batch.envelopes() {
                self.state = A::evolve(self.state, &envelope.event);
                self.created_at.get_or_insert(envelope.occurred_at);
                self.updated_at = Some(envelope.occurred_at);
                on_event(envelope, &self.state);
            }
            self.version = last_version;
            if self.recent_commands.len() == RECENT_COMMANDS {
                self.recent_commands.pop_front();
            }
            self.recent_commands.push_back(batch.command_id());
        }
        (self, verdict)
    }
}
