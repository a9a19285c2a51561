//! One command at a time per entity within this instance.
//!
//! Commands on one entity that race each other in one instance would decide
//! on the same state and all but one would conflict, however valid they all
//! are. In a lane they run one after another, each decided on the state the
//! previous one left (remembered by [`crate::snapshots`]), so only writers on
//! other instances can conflict.
//!
//! Why not decide a whole queue at once and append it in one transaction:
//! the log judges each command's batch on its own, by version. If the first
//! of two chained batches loses to another instance's write of the same
//! length, the second still carries the right version and would be accepted,
//! though it was decided on a state that never existed. Running them one
//! after another keeps every accepted command decided on the real state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

/// The lanes of the entities that have commands running or waiting.
#[derive(Default)]
pub struct Lanes {
    lanes: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

/// The turn of one command in its entity's lane; the next command's turn
/// starts when it is dropped.
pub struct Turn {
    lanes: Arc<Lanes>,
    id: Uuid,
    lane: Arc<tokio::sync::Mutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Lanes {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>> {
        // The map stays consistent whatever panicked while holding the lock.
        self.lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for the entity's turn (first come, first served).
    pub async fn turn(self: &Arc<Self>, id: Uuid) -> Turn {
        let lane = self.map().entry(id).or_default().clone();
        let guard = lane.clone().lock_owned().await;
        Turn {
            lanes: self.clone(),
            id,
            lane,
            guard: Some(guard),
        }
    }

    /// Entities with a lane now (commands running or waiting).
    #[cfg(test)]
    fn active(&self) -> usize {
        self.map().len()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.lanes.map();
        // Only the map and this turn hold the lane: nobody waits, and nobody
        // can start waiting while the map is locked.
        if Arc::strong_count(&self.lane) == 2 {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_turn_at_a_time_per_entity_and_no_lane_left_behind() {
        let lanes = Arc::new(Lanes::default());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let first = lanes.turn(a).await;
        let other_entity = tokio::time::timeout(Duration::from_secs(1), lanes.turn(b)).await;
        assert!(other_entity.is_ok(), "another entity's lane is independent");
        drop(other_entity);

        let waiting = tokio::spawn({
            let lanes = lanes.clone();
            async move { lanes.turn(a).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the second command waits for the first"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("its turn comes")
            .expect("no panic");
        assert_eq!(lanes.active(), 1);
        drop(second);
        assert_eq!(lanes.active(), 0, "an idle entity keeps no lane");
    }
}
