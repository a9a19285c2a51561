//! The partitioned state store: one RocksDB per partition, the registry the
//! HTTP side reads it through, and restoring from the changelog.

mod partition_store;
mod registry;
mod restore;

pub use partition_store::{
    CommittedWrites, OUTCOME_RETENTION, PartitionStore, Positions, StoreError, StoreOptions,
};
pub use registry::{FoldMetrics, PartitionHandle, PartitionStatus, Registry, WaitError};
pub(crate) use restore::QuietEof;
pub use restore::{RestoreError, restore_partition};
