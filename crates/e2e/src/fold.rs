//! The fold of an events topic, computed from the raw log with the domain's
//! rule: what every store, read model and answer must agree with.

use std::collections::{BTreeMap, HashSet};

use domain::aggregate::{CommandBatch, Snapshot, Verdict};
use domain::order::{Order, OrderAggregate, OrderEvent};
use event_store::{KafkaConfig, ReadError, read_committed_to_end};
use uuid::Uuid;

/// An order's snapshot.
pub type OrderSnapshot = Snapshot<Option<Order>>;

/// Every order's snapshot, now and at each version it passed through, and
/// what became of each command.
#[derive(Default)]
pub struct LogFold {
    /// The state after the whole log.
    pub snapshots: BTreeMap<Uuid, OrderSnapshot>,
    /// The state after each accepted version.
    pub by_version: BTreeMap<(Uuid, u64), OrderSnapshot>,
    /// The ids of the accepted events.
    pub accepted_events: HashSet<Uuid>,
    /// Each command's first verdict.
    pub verdicts: BTreeMap<Uuid, Verdict>,
}

/// Reads the committed records of `events_topic` to its end and folds them.
pub async fn fold_log(kafka: &KafkaConfig, events_topic: &str) -> Result<LogFold, ReadError> {
    let mut fold = LogFold::default();
    // Sorted by partition, then offset: each order's records in log order.
    for record in read_committed_to_end(kafka, events_topic).await? {
        let Ok(batch) = CommandBatch::<OrderEvent>::decode(
            record.payload.as_deref().unwrap_or_default(),
            "order",
        ) else {
            continue;
        };
        let snapshot = fold
            .snapshots
            .remove(&batch.aggregate_id())
            .unwrap_or_default();
        let (next, verdict) = snapshot.apply::<OrderAggregate>(&batch);
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
