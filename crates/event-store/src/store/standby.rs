//! Standby replicas: warm copies of partitions this instance does not own,
//! kept by tailing their changelog (committed records only), so that taking
//! a partition over restores only the short tail the copy is behind.
//!
//! A copy lives in the same folder the processor would use for the partition.
//! The processor *claims* a partition before opening its store: the tailing
//! stops for it and the open store is handed over. Between claim and release
//! the tailing thread never opens that partition, so RocksDB's one-writer
//! lock is never contended.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::{Message, Offset, TopicPartitionList};
use uuid::Uuid;

use super::{PartitionStore, Positions, StoreError, StoreOptions, changelog_entry, store_path};
use crate::KafkaConfig;

/// A changelog record as a store entry: the aggregate id and its snapshot.
type ChangelogEntry = (Uuid, Option<Vec<u8>>);

/// Changelog records applied per RocksDB write.
const BATCH: usize = 2_000;

/// One warm copy.
pub struct Replica {
    /// The partition it copies.
    pub partition: i32,
    /// Its store (committed changelog records only).
    pub store: PartitionStore,
    input: i64,
    position: AtomicI64,
    end: AtomicI64,
}

impl Replica {
    /// The next changelog offset the copy has not applied.
    pub fn position(&self) -> i64 {
        self.position.load(Ordering::Relaxed)
    }

    /// How many changelog records the copy is behind the end, as last seen.
    pub fn lag(&self) -> i64 {
        (self.end.load(Ordering::Relaxed) - self.position()).max(0)
    }
}

#[derive(Default)]
struct Wishes {
    /// The partitions to keep copies of.
    wanted: BTreeSet<i32>,
    /// The partitions the processor owns: never opened here.
    claimed: BTreeSet<i32>,
}

/// The standby copies of an instance, shared by the tailing thread, the
/// processor (which claims them) and the HTTP side (which reads them).
#[derive(Default)]
pub struct Standbys {
    wishes: Mutex<Wishes>,
    replicas: RwLock<BTreeMap<i32, Arc<Replica>>>,
}

impl Standbys {
    fn wishes(&self) -> MutexGuard<'_, Wishes> {
        self.wishes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Says which partitions to keep copies of (the owned ones are skipped).
    pub fn set_wanted(&self, partitions: BTreeSet<i32>) {
        self.wishes().wanted = partitions;
    }

    /// The copy of a partition, if one is kept here.
    pub fn get(&self, partition: i32) -> Option<Arc<Replica>> {
        self.replicas.read().ok()?.get(&partition).cloned()
    }

    /// Every copy kept here, in partition order.
    pub fn all(&self) -> Vec<Arc<Replica>> {
        self.replicas
            .read()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The processor takes a partition over: the copy stops, and its store
    /// (if there was one) is handed over once no reader holds it.
    pub fn claim(&self, partition: i32) -> Option<PartitionStore> {
        let mut wishes = self.wishes();
        wishes.claimed.insert(partition);
        let mut replica = self.replicas.write().ok()?.remove(&partition)?;
        drop(wishes);
        let started = Instant::now();
        loop {
            // Readers hold a copy for one lookup; the tailing thread for one write.
            match Arc::try_unwrap(replica) {
                Ok(replica) => {
                    tracing::info!(
                        partition,
                        position = replica.position(),
                        "standby copy taken over"
                    );
                    return Some(replica.store);
                }
                Err(shared) => replica = shared,
            }
            if started.elapsed() > Duration::from_secs(5) {
                tracing::warn!(partition, "a standby copy is still in use; waiting");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The processor gave a partition up: it may be copied here again.
    pub fn release(&self, partition: i32) {
        self.wishes().claimed.remove(&partition);
    }

    /// Opens the wanted copies and drops the unwanted ones.
    fn reconcile(&self, config: &StandbyConfig) {
        let wishes = self.wishes();
        let Ok(mut replicas) = self.replicas.write() else {
            return;
        };
        replicas.retain(|p, _| wishes.wanted.contains(p) && !wishes.claimed.contains(p));
        for &partition in wishes.wanted.difference(&wishes.claimed) {
            if replicas.contains_key(&partition) {
                continue;
            }
            match config.open(partition) {
                Ok(replica) => {
                    tracing::info!(
                        partition,
                        position = replica.position(),
                        "standby copy started"
                    );
                    replicas.insert(partition, Arc::new(replica));
                }
                // Still open elsewhere (a reader of the revoked partition): next round.
                Err(error) => tracing::debug!(partition, %error, "standby copy not opened yet"),
            }
        }
    }
}

/// Where and how the copies are kept.
#[derive(Clone)]
pub struct StandbyConfig {
    /// The brokers.
    pub kafka: KafkaConfig,
    /// The changelog topic.
    pub changelog: String,
    /// The events topic (names the store folders).
    pub events: String,
    /// Where the partition stores live.
    pub state_dir: PathBuf,
    /// RocksDB settings.
    pub store_options: StoreOptions,
}

impl StandbyConfig {
    fn open(&self, partition: i32) -> Result<Replica, StoreError> {
        let path = store_path(&self.state_dir, &self.events, partition);
        let store = PartitionStore::open(&path, &self.store_options)?;
        let positions = store.positions()?;
        Ok(Replica {
            partition,
            store,
            input: positions.input,
            position: AtomicI64::new(positions.changelog),
            end: AtomicI64::new(positions.changelog),
        })
    }
}

/// Learns the changelog's ends from the consumer's statistics.
struct EndWatch {
    standbys: Arc<Standbys>,
    changelog: String,
}

impl ClientContext for EndWatch {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.changelog) else {
            return;
        };
        for replica in self.standbys.all() {
            if let Some(p) = topic.partitions.get(&replica.partition)
                && p.ls_offset >= 0
            {
                replica.end.store(p.ls_offset, Ordering::Relaxed);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "standby consumer error");
    }
}

impl ConsumerContext for EndWatch {}

/// Why the tailing stopped.
#[derive(Debug, thiserror::Error)]
pub enum StandbyError {
    /// Kafka failed.
    #[error("standby consumer: {0}")]
    Kafka(#[from] KafkaError),
}

/// Tails the changelog into the wanted copies until `stop` is set; blocks
/// the calling thread. A failed write is logged and the copy dropped (it is
/// reopened at its last good position).
pub fn run(
    config: StandbyConfig,
    standbys: Arc<Standbys>,
    stop: Arc<AtomicBool>,
) -> Result<(), StandbyError> {
    let consumer: BaseConsumer<EndWatch> = config
        .kafka
        .read_to_end_config("standby")
        .set("statistics.interval.ms", "1000")
        .create_with_context(EndWatch {
            standbys: standbys.clone(),
            changelog: config.changelog.clone(),
        })?;
    // Per partition: the entries read in this round, and the offset after them.
    let mut batches: BTreeMap<i32, (Vec<ChangelogEntry>, i64)> = BTreeMap::new();
    let mut assigned = BTreeSet::new();
    while !stop.load(Ordering::Relaxed) {
        standbys.reconcile(&config);
        let replicas = standbys.all();
        let current: BTreeSet<i32> = replicas.iter().map(|r| r.partition).collect();
        if current != assigned {
            let mut assignment = TopicPartitionList::new();
            for replica in &replicas {
                assignment.add_partition_offset(
                    &config.changelog,
                    replica.partition,
                    Offset::Offset(replica.position()),
                )?;
            }
            consumer.assign(&assignment)?;
            assigned = current;
        }
        drop(replicas);
        let mut timeout = Duration::from_millis(100);
        for _ in 0..BATCH {
            match consumer.poll(timeout) {
                Some(Ok(message)) => {
                    let (records, next) = batches.entry(message.partition()).or_default();
                    *next = message.offset() + 1;
                    if let Some(entry) = changelog_entry(&message) {
                        records.push(entry);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    if let Some(replica) = standbys.get(partition) {
                        replica.end.store(replica.position(), Ordering::Relaxed);
                    }
                }
                Some(Err(error)) => tracing::warn!(%error, "standby consumer error"),
                None => break,
            }
            timeout = Duration::ZERO;
        }
        for (partition, (records, next)) in std::mem::take(&mut batches) {
            // A claimed copy is gone from the map: what was read for it is dropped.
            let Some(replica) = standbys.get(partition) else {
                continue;
            };
            let positions = Positions {
                input: replica.input,
                changelog: next,
            };
            match replica.store.restore(&records, positions) {
                Ok(()) => {
                    replica.position.store(next, Ordering::Relaxed);
                    replica.end.fetch_max(next, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::error!(partition, %error, "standby write failed; reopening the copy");
                    if let Ok(mut replicas) = standbys.replicas.write() {
                        replicas.remove(&partition);
                    }
                }
            }
        }
    }
    Ok(())
}
