//! What this instance owns, shared between the processor thread (writer) and
//! the HTTP handlers (readers). A partition is in the registry only while it
//! is assigned here, so a reader can never see a store it does not own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::{OpenStores, PartitionStore, Standbys};

/// Where an owned partition is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PartitionStatus {
    /// Catching up from the changelog; queries wait or get a 503.
    Restoring,
    /// Folding new events.
    Running,
    /// Halted on a record it must not skip; the reason says which.
    Stopped {
        /// What happened, for operators.
        reason: String,
    },
}

/// One owned partition: its store and how far it has committed.
pub struct PartitionHandle {
    /// The partition number.
    pub partition: i32,
    /// Its store; holds committed data only.
    pub store: Arc<PartitionStore>,
    committed: watch::Sender<i64>,
    high_watermark: AtomicI64,
    status: Mutex<PartitionStatus>,
}

impl PartitionHandle {
    /// A handle for a store whose data reflects input up to `committed`.
    pub fn new(partition: i32, store: Arc<PartitionStore>, committed: i64) -> Self {
        Self {
            partition,
            store,
            committed: watch::Sender::new(committed),
            high_watermark: AtomicI64::new(committed),
            status: Mutex::new(PartitionStatus::Running),
        }
    }

    /// The next input offset whose effects are not yet committed here.
    pub fn committed(&self) -> i64 {
        *self.committed.borrow()
    }

    /// Records committed progress and wakes the waiters.
    pub fn set_committed(&self, next_offset: i64) {
        self.committed.send_replace(next_offset);
    }

    /// The input's end, as last seen.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Relaxed)
    }

    /// Records the input's end.
    pub fn set_high_watermark(&self, offset: i64) {
        self.high_watermark.store(offset, Ordering::Relaxed);
    }

    /// The partition's state.
    pub fn status(&self) -> PartitionStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or(PartitionStatus::Restoring)
    }

    /// Changes the partition's state.
    pub fn set_status(&self, status: PartitionStatus) {
        if let Ok(mut current) = self.status.lock() {
            *current = status;
        }
    }

    /// Notified whenever committed progress moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
    }

    /// Waits until the input up to and including `offset` is committed here.
    pub async fn wait_past(&self, offset: i64, timeout: Duration) -> Result<(), WaitError> {
        let mut progress = self.committed.subscribe();
        let reached = tokio::time::timeout(timeout, progress.wait_for(|next| *next > offset)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_closed)) => Err(WaitError::Released),
            Err(_elapsed) => Err(WaitError::TimedOut {
                committed: self.committed(),
            }),
        }
    }
}

/// Why a wait for an offset ended without it.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The bound passed first.
    #[error("offset not reached in time; committed up to {committed}")]
    TimedOut {
        /// How far the partition had committed.
        committed: i64,
    },
    /// The partition was revoked while waiting.
    #[error("the partition was reassigned while waiting")]
    Released,
}

/// Counters of the processor, for `/metrics`.
#[derive(Default, Debug)]
pub struct FoldMetrics {
    /// Records of the events topic folded (any verdict, and poison).
    pub records: AtomicU64,
    /// Commands accepted.
    pub accepted: AtomicU64,
    /// Events accepted.
    pub events: AtomicU64,
    /// Commands rejected as conflicts.
    pub conflicts: AtomicU64,
    /// Commands recognised as duplicates.
    pub duplicates: AtomicU64,
    /// Poison records sent to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Transactions aborted.
    pub aborts: AtomicU64,
}

/// How a partition's store was brought up to date when it was taken over.
#[derive(Clone, Copy, Debug, Default)]
pub struct Restored {
    /// Changelog records applied.
    pub records: u64,
    /// How long it took.
    pub seconds: f64,
}

/// The partitions this instance owns.
#[derive(Default)]
pub struct Registry {
    partitions: RwLock<BTreeMap<i32, Arc<PartitionHandle>>>,
    partition_count: AtomicI32,
    joined: AtomicBool,
    /// Warm copies of partitions owned elsewhere.
    pub standbys: Arc<Standbys>,
    /// Every store open in this process, shared between roles.
    pub stores: Arc<OpenStores>,
    /// The last restore of each partition taken over here.
    restores: Mutex<BTreeMap<i32, Restored>>,
    /// The processor's counters.
    pub metrics: FoldMetrics,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The handle of an owned partition.
    pub fn get(&self, partition: i32) -> Option<Arc<PartitionHandle>> {
        self.partitions.read().ok()?.get(&partition).cloned()
    }

    /// Every owned partition, in order.
    pub fn owned(&self) -> Vec<Arc<PartitionHandle>> {
        self.partitions
            .read()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds a partition once its store is ready.
    pub fn insert(&self, handle: Arc<PartitionHandle>) {
        if let Ok(mut partitions) = self.partitions.write() {
            partitions.insert(handle.partition, handle);
        }
    }

    /// Drops a partition that is no longer owned.
    pub fn remove(&self, partition: i32) -> Option<Arc<PartitionHandle>> {
        self.partitions.write().ok()?.remove(&partition)
    }

    /// How many partitions the input topic has (0 until known).
    pub fn partition_count(&self) -> i32 {
        self.partition_count.load(Ordering::Relaxed)
    }

    /// True once the processor has received its first assignment (possibly empty).
    pub fn joined(&self) -> bool {
        self.joined.load(Ordering::Relaxed)
    }

    /// Records whether the processor is in its group with an assignment.
    pub fn set_joined(&self, joined: bool) {
        self.joined.store(joined, Ordering::Relaxed);
    }

    /// Records how a partition's takeover restore went.
    pub fn set_restored(&self, partition: i32, restored: Restored) {
        if let Ok(mut restores) = self.restores.lock() {
            restores.insert(partition, restored);
        }
    }

    /// The last restore of each partition taken over here.
    pub fn restores(&self) -> BTreeMap<i32, Restored> {
        self.restores.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Records the input topic's partition count.
    pub fn set_partition_count(&self, count: i32) {
        self.partition_count.store(count, Ordering::Relaxed);
    }
}
