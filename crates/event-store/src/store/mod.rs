//! The partitioned state store: one RocksDB per partition, the registry the
//! HTTP side reads it through, restoring from the changelog, and standby
//! copies of partitions owned elsewhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

mod partition_store;
mod registry;
mod restore;
pub mod standby;

pub use partition_store::{
    CommittedWrites, Encoded, OUTCOME_RETENTION, PartitionStore, Positions, StoreError,
    StoreOptions,
};
pub use registry::{
    FoldMetrics, FoldedRead, PartitionHandle, PartitionStatus, Registry, Restored, WaitError,
};
pub(crate) use restore::{QuietEof, changelog_entry, is_end_of_partition};
pub use restore::{RestoreError, restore_partition};
pub use standby::{Replica, Standbys};

/// The folder of a partition's store: the same for its owner and its standby.
pub fn store_path(state_dir: &Path, events_topic: &str, partition: i32) -> PathBuf {
    state_dir.join(format!("{events_topic}-{partition}"))
}

/// The stores this process has open, by folder. A folder is opened once and
/// shared by whoever needs it at the moment (the owner, a standby copy, a
/// reader finishing with a partition that just moved), so RocksDB's
/// one-process lock is never contended within the process, and handing a
/// partition from one role to another needs no reopening.
#[derive(Default)]
pub struct OpenStores {
    open: Mutex<HashMap<PathBuf, Weak<PartitionStore>>>,
}

impl OpenStores {
    /// The store in `path`: the one already open, or newly opened.
    pub fn open(
        &self,
        path: &Path,
        options: &StoreOptions,
    ) -> Result<Arc<PartitionStore>, StoreError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = open.get(path).and_then(Weak::upgrade) {
            return Ok(store);
        }
        let store = Arc::new(PartitionStore::open(path, options)?);
        open.retain(|_, weak| weak.strong_count() > 0);
        open.insert(path.to_owned(), Arc::downgrade(&store));
        Ok(store)
    }
}
