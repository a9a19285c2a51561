//! The partitioned state store: one RocksDB per partition, the registry the
//! HTTP side reads it through, restoring from the changelog, and standby
//! copies of partitions owned elsewhere.

use std::path::{Path, PathBuf};

mod partition_store;
mod registry;
mod restore;
pub mod standby;

pub use partition_store::{
    CommittedWrites, OUTCOME_RETENTION, PartitionStore, Positions, StoreError, StoreOptions,
};
pub use registry::{FoldMetrics, PartitionHandle, PartitionStatus, Registry, WaitError};
pub(crate) use restore::{QuietEof, changelog_entry};
pub use restore::{RestoreError, restore_partition};
pub use standby::{Replica, Standbys};

/// The folder of a partition's store: the same for its owner and its standby.
pub fn store_path(state_dir: &Path, events_topic: &str, partition: i32) -> PathBuf {
    state_dir.join(format!("{events_topic}-{partition}"))
}
