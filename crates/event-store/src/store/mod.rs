//! The partitioned state store: one RocksDB per partition, the registry the
//! HTTP side reads it through, restoring from the changelog, and standby
//! copies of partitions owned elsewhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

mod partition_handle;
mod partition_store;
mod registry;
mod restore;
pub mod standby;

pub use partition_handle::{FoldedRead, PartitionHandle, PartitionStatus, WaitError};
pub use partition_store::{
    CommittedWrites, Encoded, OUTCOME_GENERATION, PartitionStore, Positions, StoreError,
    StoreOptions,
};
pub use registry::{FoldMetrics, Registry, Restored};
pub use restore::{QuietEof, RestoreError, restore_partition};
pub(crate) use restore::{changelog_entry, is_end_of_partition, is_transient};
pub use standby::{Replica, Standbys};

/// The folder of a partition's store: the same for its owner and its standby.
pub fn store_path(state_dir: &Path, events_topic: &str, partition: i32) -> PathBuf {
    state_dir.join(format!("{events_topic}-{partition}"))
}

/// How long opening waits for the same folder's previous store to close.
const CLOSING_BOUND: Duration = Duration::from_secs(10);

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
        let was_open = match open.get(path) {
            Some(weak) => match weak.upgrade() {
                Some(store) => return Ok(store),
                None => true,
            },
            None => false,
        };
        let deadline = Instant::now() + CLOSING_BOUND;
        let store = loop {
            match PartitionStore::open(path, options) {
                Ok(store) => break Arc::new(store),
                // Its last user dropped it a moment ago, and RocksDB keeps
                // the folder locked until it has closed: wait for that.
                Err(_) if was_open && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(error) => return Err(error),
            }
        };
        open.retain(|_, weak| weak.strong_count() > 0);
        open.insert(path.to_owned(), Arc::downgrade(&store));
        Ok(store)
    }
}
