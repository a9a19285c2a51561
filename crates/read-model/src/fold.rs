//! The pure part of the pipeline: records in log order, judged with the
//! shared rule against the current snapshots; out come the snapshots the
//! batch changed and the events it accepted.

use std::collections::{HashMap, HashSet};

use domain::aggregate::{Aggregate, CommandBatch, Envelope, Snapshot, Verdict};
use uuid::Uuid;

/// What one batch of records did to the model.
pub struct Folded<A: Aggregate> {
    /// The new snapshot of every aggregate an accepted command changed.
    pub changed: HashMap<Uuid, Snapshot<A::State>>,
    /// The accepted events, in log order.
    pub accepted: Vec<Envelope<A::Event>>,
    /// Commands judged a conflict or a duplicate (they change nothing).
    pub rejected: u64,
    /// Aggregates this batch created (nothing of them is stored yet).
    pub created: HashSet<Uuid>,
}

impl<A: Aggregate> Default for Folded<A> {
    fn default() -> Self {
        Self {
            changed: HashMap::new(),
            accepted: Vec::new(),
            rejected: 0,
            created: HashSet::new(),
        }
    }
}

impl<A: Aggregate> Folded<A> {
    /// Judges one command batch against the latest snapshot of its aggregate
    /// (changed earlier in this batch, else `current`) and folds it in.
    pub fn apply(
        &mut self,
        batch: CommandBatch<A::Event>,
        current: &HashMap<Uuid, Snapshot<A::State>>,
    ) {
        let id = batch.aggregate_id();
        let snapshot = match self.changed.remove(&id) {
            Some(snapshot) => snapshot,
            None => current.get(&id).cloned().unwrap_or_default(),
        };
        let (next, verdict) = snapshot.apply::<A>(&batch);
        if let Verdict::Accepted { .. } = verdict {
            self.accepted.extend(batch.into_envelopes());
        } else {
            self.rejected += 1;
        }
        // A rejected command leaves the snapshot as it was; keeping it here
        // only saves a lookup for the next command of the same aggregate.
        self.changed.insert(id, next);
    }

    /// Drops entries that did not change (their version is what `current`
    /// holds), so only real changes are written.
    pub fn retain_changes(&mut self, current: &HashMap<Uuid, Snapshot<A::State>>) {
        self.created = self
            .changed
            .keys()
            .filter(|id| !current.contains_key(id))
            .copied()
            .collect();
        self.changed.retain(|id, snapshot| {
            current.get(id).map_or(snapshot.version > 0, |before| {
                before.version != snapshot.version
            })
        });
    }
}
