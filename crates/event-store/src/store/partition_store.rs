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

/// Keys: a one-byte kind, then the aggregate id (snapshots) or the
/// generation and the command id (outcomes).
const SNAPSHOT: u8 = b's';
const OUTCOME: u8 = b'g';
const INPUT_POSITION: &[u8] = b"m:input";
const CHANGELOG_POSITION: &[u8] = b"m:changelog";
const OUTCOME_NEXT: &[u8] = b"m:outcome-next";
/// The outcome index of earlier versions (outcomes by command id, evicted
/// one by one through a sequence index): its keys are dropped at open.
const LEGACY_OUTCOME_RANGES: [(&[u8], &[u8]); 2] = [(b"o", b"p"), (b"q", b"r")];
const LEGACY_OUTCOME_FIRST: &[u8] = b"m:outcome-first";

/// Outcomes are kept in generations of this many commands: the current one
/// and the one before, so a partition keeps the last 100,000 to 200,000.
/// A generation is dropped whole, with one range delete: keeping an outcome
/// costs one write, and nothing is read to let it go.
pub const OUTCOME_GENERATION: u64 = 100_000;

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
        let store = Self {
            db,
            path: path.to_owned(),
            writes,
        };
        store.drop_legacy_outcomes()?;
        Ok(store)
    }

    fn drop_legacy_outcomes(&self) -> Result<(), StoreError> {
        if self.get(LEGACY_OUTCOME_FIRST)?.is_none() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for (from, to) in LEGACY_OUTCOME_RANGES {
            batch.delete_range(from, to);
        }
        batch.delete(LEGACY_OUTCOME_FIRST);
        batch.delete(OUTCOME_NEXT);
        self.db
            .write_opt(batch, &self.writes)
            .map_err(|e| self.error(e))
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
        let current = self.get_i64(OUTCOME_NEXT)? as u64 / OUTCOME_GENERATION;
        for generation in [current, current.wrapping_sub(1)] {
            if let Some(outcome) = self.get(&outcome_key(generation, command_id))? {
                return Ok(Some(outcome));
            }
        }
        Ok(None)
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
        let mut next = self.get_i64(OUTCOME_NEXT)? as u64;
        let generation_before = next / OUTCOME_GENERATION;
        for (command_id, outcome) in &writes.outcomes {
            batch.put(outcome_key(next / OUTCOME_GENERATION, command_id), outcome);
            next += 1;
        }
        let generation = next / OUTCOME_GENERATION;
        if generation != generation_before && generation >= 2 {
            // Every generation before the previous one.
            batch.delete_range(
                outcome_key(0, &Uuid::nil()),
                outcome_key(generation - 1, &Uuid::nil()),
            );
        }
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

/// Generations sort in order (big-endian), so older ones form one range.
fn outcome_key(generation: u64, command_id: &Uuid) -> [u8; 25] {
    let mut key = [0; 25];
    key[0] = OUTCOME;
    key[1..9].copy_from_slice(&generation.to_be_bytes());
    key[9..].copy_from_slice(command_id.as_bytes());
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
    fn outcomes_are_dropped_a_generation_at_a_time_keeping_the_previous_one() {
        let store = TempStore::new();
        let commands: Vec<Uuid> = (0..2 * OUTCOME_GENERATION + 3)
            .map(|_| Uuid::now_v7())
            .collect();
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
        let (oldest, rest) = commands.split_at(OUTCOME_GENERATION as usize);
        assert!(!oldest.iter().any(kept), "the oldest generation is gone");
        assert!(rest.iter().all(kept), "the previous and current are kept");
    }

    #[test]
    fn an_earlier_versions_outcome_index_is_dropped_at_open() {
        let mut store = TempStore::new();
        let legacy_outcome = key(b'o', Uuid::now_v7().as_bytes());
        for (legacy_key, value) in [
            (&legacy_outcome[..], &b"outcome"[..]),
            (&key(b'q', &0u64.to_be_bytes())[..], &b"id"[..]),
            (b"m:outcome-first", &0i64.to_be_bytes()[..]),
            (OUTCOME_NEXT, &1i64.to_be_bytes()[..]),
        ] {
            store.get().db.put(legacy_key, value).expect("put");
        }

        store.reopen();

        let db = &store.get().db;
        assert_eq!(db.get(&legacy_outcome).expect("get"), None);
        assert_eq!(db.get(key(b'q', &0u64.to_be_bytes())).expect("get"), None);
        assert_eq!(db.get(b"m:outcome-first").expect("get"), None);
        assert_eq!(store.get().get_i64(OUTCOME_NEXT).expect("get"), 0);
    }
}
