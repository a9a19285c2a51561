//! One partition's state in RocksDB: aggregate snapshots, recent command
//! outcomes, and the positions they reflect.
//!
//! Only committed data is ever written here: the processor writes a
//! transaction's results after Kafka has committed it. The positions are
//! written in the same atomic `WriteBatch` as the data, so they can never
//! disagree with it (a checkpoint kept apart from the data can go stale and
//! make a restart trust writes that Kafka aborted).

use std::path::{Path, PathBuf};

use rocksdb::{BlockBasedOptions, Cache, DB, DBCompressionType, Options, WriteBatch, WriteOptions};
use uuid::Uuid;

/// Keys: a one-byte kind, then the id or sequence number.
const SNAPSHOT: u8 = b's';
const OUTCOME: u8 = b'o';
const OUTCOME_SEQ: u8 = b'q';
const INPUT_POSITION: &[u8] = b"m:input";
const CHANGELOG_POSITION: &[u8] = b"m:changelog";
const OUTCOME_FIRST: &[u8] = b"m:outcome-first";
const OUTCOME_NEXT: &[u8] = b"m:outcome-next";

/// How many command outcomes a partition keeps; older ones are deleted.
pub const OUTCOME_RETENTION: u64 = 100_000;

/// A RocksDB failure, with the store it happened in.
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {source}")]
pub struct StoreError {
    path: PathBuf,
    #[source]
    source: rocksdb::Error,
}

/// Where a store stands: the next offsets of the topics it has folded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    /// The next offset of the events topic to fold.
    pub input: i64,
    /// The next offset of the changelog that is reflected here.
    pub changelog: i64,
}

/// An encoded snapshot or outcome, shared between the open transaction's
/// view, the changelog record and the store write.
pub type Encoded = std::sync::Arc<[u8]>;

/// The results of one committed transaction for one partition.
#[derive(Debug, Default)]
pub struct CommittedWrites {
    /// Aggregate id and its encoded snapshot.
    pub snapshots: Vec<(Uuid, Encoded)>,
    /// Command id and its encoded outcome.
    pub outcomes: Vec<(Uuid, Encoded)>,
    /// Where the store stands after these writes.
    pub positions: Positions,
}

/// Settings shared by every partition store of a process.
#[derive(Clone)]
pub struct StoreOptions {
    options: Options,
}

impl StoreOptions {
    /// Stores whose blocks share one cache of `cache_bytes`, with small
    /// memtables so that several partitions fit in a few hundred MiB.
    pub fn new(cache_bytes: usize) -> Self {
        let cache = Cache::new_lru_cache(cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(DBCompressionType::Lz4);
        options.set_write_buffer_size(16 << 20);
        options.set_max_write_buffer_number(2);
        options.set_block_based_table_factory(&table);
        Self { options }
    }
}

/// One partition's RocksDB.
pub struct PartitionStore {
    db: DB,
    path: PathBuf,
    writes: WriteOptions,
}

impl PartitionStore {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let db = DB::open(&options.options, path).map_err(|source| StoreError {
            path: path.to_owned(),
            source,
        })?;
        // No write-ahead log: the changelog is the store's log. A crash
        // loses the writes since the last memtable flush, all batches after
        // some point at once (each carries its positions), so the store
        // falls back to an earlier consistent state, and the restore on
        // assignment reads the changelog from the position it recorded.
        let mut writes = WriteOptions::default();
        writes.disable_wal(true);
        Ok(Self {
            db,
            path: path.to_owned(),
            writes,
        })
    }

    /// Deletes the store in `path`, if any.
    pub fn destroy(path: &Path, options: &StoreOptions) -> Result<(), StoreError> {
        DB::destroy(&options.options, path).map_err(|source| StoreError {
            path: path.to_owned(),
            source,
        })
    }

    /// Where the store is on disk.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: rocksdb::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source,
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(key).map_err(|e| self.error(e))
    }

    fn get_i64(&self, key: &[u8]) -> Result<i64, StoreError> {
        Ok(self
            .get(key)?
            .and_then(|bytes| bytes.try_into().ok())
            .map(i64::from_be_bytes)
            .unwrap_or(0))
    }

    /// The encoded snapshot of an aggregate.
    pub fn snapshot(&self, id: &Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(&key(SNAPSHOT, id.as_bytes()))
    }

    /// The encoded outcome of a recent command.
    pub fn outcome(&self, command_id: &Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(&key(OUTCOME, command_id.as_bytes()))
    }

    /// The positions the data reflects.
    pub fn positions(&self) -> Result<Positions, StoreError> {
        Ok(Positions {
            input: self.get_i64(INPUT_POSITION)?,
            changelog: self.get_i64(CHANGELOG_POSITION)?,
        })
    }

    /// Writes a committed transaction's results, atomically with its positions.
    pub fn apply(&self, writes: CommittedWrites) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for (id, snapshot) in &writes.snapshots {
            batch.put(key(SNAPSHOT, id.as_bytes()), snapshot);
        }
        let first = self.get_i64(OUTCOME_FIRST)? as u64;
        let mut next = self.get_i64(OUTCOME_NEXT)? as u64;
        for (command_id, outcome) in &writes.outcomes {
            batch.put(key(OUTCOME, command_id.as_bytes()), outcome);
            batch.put(key(OUTCOME_SEQ, &next.to_be_bytes()), command_id.as_bytes());
            next += 1;
        }
        let mut first_kept = first;
        while next - first_kept > OUTCOME_RETENTION {
            let seq_key = key(OUTCOME_SEQ, &first_kept.to_be_bytes());
            if let Some(command_id) = self.get(&seq_key)? {
                batch.delete(key(OUTCOME, &command_id));
            }
            batch.delete(seq_key);
            first_kept += 1;
        }
        batch.put(OUTCOME_FIRST, (first_kept as i64).to_be_bytes());
        batch.put(OUTCOME_NEXT, (next as i64).to_be_bytes());
        put_positions(&mut batch, writes.positions);
        self.db
            .write_opt(batch, &self.writes)
            .map_err(|e| self.error(e))
    }

    /// Writes changelog records (`None` deletes), atomically with the new
    /// changelog position; the input position is the caller's to give.
    pub fn restore(
        &self,
        records: &[(Uuid, Option<Vec<u8>>)],
        positions: Positions,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for (id, snapshot) in records {
            match snapshot {
                Some(snapshot) => batch.put(key(SNAPSHOT, id.as_bytes()), snapshot),
                None => batch.delete(key(SNAPSHOT, id.as_bytes())),
            }
        }
        put_positions(&mut batch, positions);
        self.db
            .write_opt(batch, &self.writes)
            .map_err(|e| self.error(e))
    }

    /// How many aggregates the store holds (an estimate from RocksDB).
    pub fn estimated_keys(&self) -> u64 {
        self.db
            .property_int_value("rocksdb.estimate-num-keys")
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

fn put_positions(batch: &mut WriteBatch, positions: Positions) {
    batch.put(INPUT_POSITION, positions.input.to_be_bytes());
    batch.put(CHANGELOG_POSITION, positions.changelog.to_be_bytes());
}

fn key(kind: u8, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + id.len());
    key.push(kind);
    key.extend_from_slice(id);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempStore {
        store: Option<PartitionStore>,
        path: PathBuf,
    }

    impl TempStore {
        fn new() -> Self {
            let path = std::env::temp_dir().join(format!("store-test-{}", Uuid::now_v7()));
            let store = PartitionStore::open(&path, &StoreOptions::new(1 << 20)).expect("open");
            Self {
                store: Some(store),
                path,
            }
        }

        fn get(&self) -> &PartitionStore {
            self.store.as_ref().expect("open")
        }

        fn reopen(&mut self) {
            self.store = None;
            self.store = Some(
                PartitionStore::open(&self.path, &StoreOptions::new(1 << 20)).expect("reopen"),
            );
        }
    }

    impl Drop for TempStore {
        fn drop(&mut self) {
            self.store = None;
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }

    #[test]
    fn a_new_store_is_at_the_beginning() {
        let store = TempStore::new();
        assert_eq!(
            store.get().positions().expect("positions"),
            Positions::default()
        );
        assert_eq!(store.get().snapshot(&Uuid::nil()).expect("get"), None);
    }

    #[test]
    fn applied_writes_and_their_positions_survive_a_reopen() {
        let mut store = TempStore::new();
        let (order, command) = (Uuid::now_v7(), Uuid::now_v7());
        let positions = Positions {
            input: 42,
            changelog: 7,
        };
        store
            .get()
            .apply(CommittedWrites {
                snapshots: vec![(order, Encoded::from(&b"snapshot"[..]))],
                outcomes: vec![(command, Encoded::from(&b"outcome"[..]))],
                positions,
            })
            .expect("apply");

        store.reopen();

        assert_eq!(store.get().positions().expect("positions"), positions);
        assert_eq!(
            store.get().snapshot(&order).expect("get"),
            Some(b"snapshot".to_vec())
        );
        assert_eq!(
            store.get().outcome(&command).expect("get"),
            Some(b"outcome".to_vec())
        );
    }

    #[test]
    fn restore_writes_and_deletes_snapshots() {
        let store = TempStore::new();
        let (kept, deleted) = (Uuid::now_v7(), Uuid::now_v7());
        let records = [
            (kept, Some(b"a".to_vec())),
            (deleted, Some(b"b".to_vec())),
            (deleted, None),
        ];
        store
            .get()
            .restore(
                &records,
                Positions {
                    input: 0,
                    changelog: 3,
                },
            )
            .expect("restore");
        assert_eq!(
            store.get().snapshot(&kept).expect("get"),
            Some(b"a".to_vec())
        );
        assert_eq!(store.get().snapshot(&deleted).expect("get"), None);
        assert_eq!(store.get().positions().expect("positions").changelog, 3);
    }

    #[test]
    fn outcomes_beyond_the_retention_are_deleted_oldest_first() {
        let store = TempStore::new();
        let commands: Vec<Uuid> = (0..OUTCOME_RETENTION + 3).map(|_| Uuid::now_v7()).collect();
        for chunk in commands.chunks(50_000) {
            store
                .get()
                .apply(CommittedWrites {
                    outcomes: chunk
                        .iter()
                        .map(|c| (*c, Encoded::from(&b"o"[..])))
                        .collect(),
                    ..CommittedWrites::default()
                })
                .expect("apply");
        }
        let kept = |c: &Uuid| store.get().outcome(c).expect("get").is_some();
        assert!(
            commands[..3].iter().all(|c| !kept(c)),
            "the three oldest are gone"
        );
        assert!(commands[3..].iter().all(kept), "the rest are kept");
    }
}
