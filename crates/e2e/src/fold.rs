//! The fold of an events topic, computed from the raw log with the domain's
//! rule: what every store, read model and answer must agree with.

use std::collections::{BTreeMap, HashSet};

use domain::aggregate::{Aggregate, CommandBatch, Snapshot, Verdict};
use domain::order::{Order, OrderAggregate};
use event_store::{KafkaConfig, ReadError, read_committed_to_end};
use uuid::Uuid;

/// An order's snapshot.
pub type OrderSnapshot = Snapshot<Option<Order>>;

/// Every entity's snapshot (orders' by default), now and at each version it
/// passed through, and what became of each command.
pub struct LogFold<S = Option<Order>> {
    /// The state after the whole log.
    pub snapshots: BTreeMap<Uuid, Snapshot<S>>,
    /// The state after each accepted version.
    pub by_version: BTreeMap<(Uuid, u64), Snapshot<S>>,
    /// The ids of the accepted events.
    pub accepted_events: HashSet<Uuid>,
    /// Each command's first verdict.
    pub verdicts: BTreeMap<Uuid, Verdict>,
}

impl<S> Default for LogFold<S> {
    fn default() -> Self {
        Self {
            snapshots: BTreeMap::new(),
            by_version: BTreeMap::new(),
            accepted_events: HashSet::new(),
            verdicts: BTreeMap::new(),
        }
    }
}

/// Reads the committed records of the orders' `events_topic` to its end and folds them.
pub async fn fold_log(kafka: &KafkaConfig, events_topic: &str) -> Result<LogFold, ReadError> {
    fold_log_of::<OrderAggregate>(kafka, events_topic).await
}

/// Reads the committed records of aggregate `A`'s `events_topic` to its end
/// and folds them.
pub async fn fold_log_of<A: Aggregate>(
    kafka: &KafkaConfig,
    events_topic: &str,
) -> Result<LogFold<A::State>, ReadError> {
    let mut fold = LogFold::default();
    // Sorted by partition, then offset: each entity's records in log order.
    for record in read_committed_to_end(kafka, events_topic).await? {
        let Ok(batch) = CommandBatch::<A::Event>::decode(
            record.payload.as_deref().unwrap_or_default(),
            A::TYPE,
        ) else {
            continue;
        };
        let snapshot = fold
            .snapshots
            .remove(&batch.aggregate_id())
            .unwrap_or_default();
        let (next, verdict) = snapshot.apply::<A>(&batch);
        if let Verdict::Accepted { .. } = verdict {
            fold.accepted_events
                .extend(batch.envelopes().iter().map(|e| e.event_id));
            fold.by_version
                .insert((batch.aggregate_id(), next.version), next.clone());
        }
        fold.verdicts.entry(batch.command_id()).or_insert(verdict);
        fold.snapshots.insert(batch.aggregate_id(), next);
    }
    Ok(fold)
}
