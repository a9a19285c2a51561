//! The fold of the events topic, computed here from the raw log with the
//! domain's rule: what every store and topic must agree with.

use std::collections::{BTreeMap, HashSet};

use domain::aggregate::{CommandBatch, Snapshot, Verdict};
use domain::order::{Order, OrderAggregate, OrderEvent};
use event_store::{KafkaConfig, read_committed_to_end};
use uuid::Uuid;

pub struct LogFold {
    pub snapshots: BTreeMap<Uuid, Snapshot<Option<Order>>>,
    pub accepted_events: HashSet<Uuid>,
    pub verdicts: BTreeMap<Uuid, Verdict>,
}

pub async fn fold_log(kafka: &KafkaConfig, events_topic: &str) -> anyhow::Result<LogFold> {
    let mut fold = LogFold {
        snapshots: BTreeMap::new(),
        accepted_events: HashSet::new(),
        verdicts: BTreeMap::new(),
    };
    // Sorted by partition, then offset: each aggregate's records in log order.
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
        }
        fold.verdicts.entry(batch.command_id()).or_insert(verdict);
        fold.snapshots.insert(batch.aggregate_id(), next);
    }
    Ok(fold)
}
