//! What this instance owns, shared between the processor thread (writer) and
//! the HTTP handlers (readers). A partition is in the registry only while it
//! is assigned here, so a reader can never see a store it does not own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::{OpenStores, PartitionHandle, Standbys};

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
        let handle = self.partitions.write().ok()?.remove(&partition)?;
        handle.release();
        Some(handle)
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
