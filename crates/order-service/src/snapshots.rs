//! Snapshots this instance saw last, so a command on an entity it just
//! wrote is decided without first asking the projector.
//!
//! A remembered snapshot may be stale: another instance may have written
//! since. The executor trusts it only to append: a batch decided on a stale
//! snapshot names the version it expects, so the fold judges it a conflict
//! and the executor decides again on the projector's state. Any other
//! decision (a refusal, an `If-Match` mismatch) is made on the projector's
//! state.

use std::collections::HashMap;
use std::sync::Mutex;

use domain::aggregate::Snapshot;
use uuid::Uuid;

/// Recently seen snapshots of one entity type, at most `capacity` of them
/// (roughly: two generations of half each, the older dropped whole when the
/// younger fills).
pub struct Snapshots<S> {
    capacity: usize,
    generations: Mutex<Generations<S>>,
}

struct Generations<S> {
    young: HashMap<Uuid, Snapshot<S>>,
    old: HashMap<Uuid, Snapshot<S>>,
}

impl<S> Default for Generations<S> {
    fn default() -> Self {
        Self {
            young: HashMap::new(),
            old: HashMap::new(),
        }
    }
}

impl<S: Clone> Snapshots<S> {
    /// Remembers up to `capacity` snapshots; 0 remembers none.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            generations: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations<S>> {
        // The maps stay consistent whatever panicked while holding the lock.
        self.generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The last snapshot seen of the entity, if remembered.
    pub fn get(&self, id: &Uuid) -> Option<Snapshot<S>> {
        let generations = self.lock();
        generations
            .young
            .get(id)
            .or_else(|| generations.old.get(id))
            .cloned()
    }

    /// Remembers a snapshot, unless a newer one of the entity is remembered
    /// (answers to concurrent commands may arrive in any order). An entity
    /// with no events yet is not worth remembering.
    pub fn put(&self, id: Uuid, snapshot: &Snapshot<S>) {
        if self.capacity == 0 || snapshot.version == 0 {
            return;
        }
        let mut generations = self.lock();
        let known = generations
            .young
            .get(&id)
            .or_else(|| generations.old.get(&id))
            .map(|s| s.version);
        if known.is_some_and(|version| version > snapshot.version) {
            return;
        }
        if generations.young.len() >= self.capacity.div_ceil(2) {
            generations.old = std::mem::take(&mut generations.young);
        }
        generations.young.insert(id, snapshot.clone());
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use domain::aggregate::{CommandBatch, CommandMeta, Snapshot};
    use domain::order::{
        CustomerId, Email, LineItem, Order, OrderAggregate, OrderCommand, Quantity, Sku, UnitPrice,
        decide,
    };

    use super::*;

    type OrderSnapshot = Snapshot<Option<Order>>;

    fn placed(id: Uuid) -> OrderSnapshot {
        let command = OrderCommand::Place {
            order_id: id,
            customer_id: CustomerId::parse("c").expect("valid"),
            email: Email::parse("c@example.com").expect("valid"),
            items: vec![LineItem {
                sku: Sku::parse("BOOK-1").expect("valid"),
                quantity: Quantity::parse(1).expect("valid"),
                unit_price: UnitPrice::parse(100).expect("valid"),
            }],
        };
        let events = decide(&command, &None).expect("a valid placement");
        let meta = CommandMeta {
            aggregate_id: id,
            command_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
            occurred_at: Utc::now(),
        };
        let batch = CommandBatch::new(meta, 0, events, Uuid::now_v7).expect("events");
        Snapshot::default().apply::<OrderAggregate>(&batch).0
    }

    #[test]
    fn keeps_the_newest_version_and_at_most_its_capacity() {
        let snapshots = Snapshots::new(4);
        let id = Uuid::now_v7();
        let newer = placed(id);
        let mut older = newer.clone();
        older.version = 0;
        snapshots.put(id, &newer);
        snapshots.put(id, &older);
        assert_eq!(snapshots.get(&id).map(|s| s.version), Some(1));

        let others: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        for other in &others {
            snapshots.put(*other, &placed(*other));
        }
        assert!(snapshots.get(&id).is_none(), "the oldest is dropped");
        assert!(snapshots.get(&others[3]).is_some());

        snapshots.put(id, &OrderSnapshot::default());
        assert!(
            snapshots.get(&id).is_none(),
            "no order, nothing to remember"
        );
    }

    #[test]
    fn a_capacity_of_zero_remembers_nothing() {
        let snapshots = Snapshots::new(0);
        let id = Uuid::now_v7();
        snapshots.put(id, &placed(id));
        assert!(snapshots.get(&id).is_none());
    }
}
