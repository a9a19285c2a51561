//! Standby replicas: warm copies of partitions this instance does not own,
//! kept by tailing their changelog (committed records only), so that taking
//! a partition over restores only the short tail the copy is behind.
//!
//! A copy is the partition's store in the folder the processor would use,
//! opened through the process's [`OpenStores`]. The processor *claims* a
//! partition before opening it: the copy stops writing (a write under way
//! finishes first), and the processor then finds the same open store.
//! Between claim and release the tailing thread never starts a copy of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::{Message, Offset, TopicPartitionList};
use uuid::Uuid;

use super::{
    OpenStores, PartitionStore, Positions, Registry, StoreError, StoreOptions, changelog_entry,
    is_end_of_partition, store_path,
};
use crate::KafkaConfig;
use crate::positions::consumer_position;

/// A changelog record as a store entry: the aggregate id and its snapshot.
type ChangelogEntry = (Uuid, Option<Vec<u8>>);

/// Changelog records applied per RocksDB write.
const BATCH: usize = 2_000;

/// One warm copy.
pub struct Replica {
    /// The partition it copies.
    pub partition: i32,
    /// Its store (committed changelog records only).
    pub store: Arc<PartitionStore>,
    input: i64,
    position: AtomicI64,
    end: AtomicI64,
    /// False once claimed: no write may start after that.
    writing: Mutex<bool>,
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
    takeovers: AtomicU64,
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

    /// The processor takes a partition over: the copy stops writing, and
    /// its store stays open for the processor to find. True if there was one.
    pub fn claim(&self, partition: i32) -> bool {
        let mut wishes = self.wishes();
        wishes.claimed.insert(partition);
        let replica = self
            .replicas
            .write()
            .ok()
            .and_then(|mut replicas| replicas.remove(&partition));
        drop(wishes);
        let Some(replica) = replica else {
            return false;
        };
        // Waits for a write under way, and forbids the next.
        *replica.writing.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.takeovers.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            partition,
            position = replica.position(),
            "standby copy taken over"
        );
        true
    }

    /// How many partitions the processor took over from a copy kept here.
    pub fn takeovers(&self) -> u64 {
        self.takeovers.load(Ordering::Relaxed)
    }

    /// The processor gave a partition up: it may be copied here again.
    pub fn release(&self, partition: i32) {
        self.wishes().claimed.remove(&partition);
    }

    /// Opens the wanted copies and drops the unwanted ones.
    fn reconcile(&self, config: &StandbyConfig, stores: &OpenStores) {
        let wishes = self.wishes();
        let Ok(mut replicas) = self.replicas.write() else {
            return;
        };
        replicas.retain(|p, _| wishes.wanted.contains(p) && !wishes.claimed.contains(p));
        for &partition in wishes.wanted.difference(&wishes.claimed) {
            if replicas.contains_key(&partition) {
                continue;
            }
            match config.open(partition, stores) {
                Ok(replica) => {
                    self.takeovers.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        partition,
                        position = replica.position(),
                        "standby copy started"
                    );
                    replicas.insert(partition, Arc::new(replica));
                }
                Err(error) => {
                    tracing::warn!(partition, %error, "standby copy not opened; retrying")
                }
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
    fn open(&self, partition: i32, stores: &OpenStores) -> Result<Replica, StoreError> {
        let path = store_path(&self.state_dir, &self.events, partition);
        let store = stores.open(&path, &self.store_options)?;
        let positions = store.positions()?;
        Ok(Replica {
            partition,
            store,
            input: positions.input,
            position: AtomicI64::new(positions.changelog),
            end: AtomicI64::new(positions.changelog),
            writing: Mutex::new(true),
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
                replica.end.fetch_max(p.ls_offset, Ordering::Relaxed);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if !is_end_of_partition(&error) {
            tracing::warn!(%error, reason, "standby consumer error");
        }
    }
}

impl ConsumerContext for EndWatch {}

/// The consumer's fetch position in a partition, if it has one.
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
    registry: Arc<Registry>,
    stop: Arc<AtomicBool>,
) -> Result<(), StandbyError> {
    let standbys = registry.standbys.clone();
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
        standbys.reconcile(&config, &registry.stores);
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
                    // At the end: the consumer's position is past the last
                    // transaction marker, which no record stands for. It is
                    // applied with the round's records (which may end before
                    // the marker), never before them.
                    if let Some(end) = consumer_position(&consumer, &config.changelog, partition) {
                        let (_, next) = batches.entry(partition).or_default();
                        *next = (*next).max(end);
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
            let writing = replica.writing.lock().unwrap_or_else(|p| p.into_inner());
            if !*writing || (records.is_empty() && next <= replica.position()) {
                continue;
            }
            let positions = Positions {
                input: replica.input,
                changelog: next,
            };
            match replica.store.restore(&records, positions) {
                Ok(()) => {
                    replica.position.fetch_max(next, Ordering::Relaxed);
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
