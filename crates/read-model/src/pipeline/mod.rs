//! The exactly-once pipeline from the events topic into PostgreSQL.
//!
//! Its position is the `offsets` table, never Kafka's committed offsets: each
//! batch is folded and written in one SQL transaction together with the
//! offsets it advances to, after checking (under a row lock) that the stored
//! offsets are the ones the batch starts from. A crash, a rolled-back batch or
//! a second writer therefore never applies a record twice or skips one: the
//! pipeline re-reads the stored offsets and reassigns the consumer there.
//!
//! Layout: this module runs the lanes (one per partition, each a task of its
//! own); `consume` positions a lane and gathers its batches from Kafka;
//! `write` writes a batch and its offsets in one SQL transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::aggregate::{Aggregate, Snapshot};
use event_store::KafkaConfig;
use event_store::store::QuietEof;
use event_store::trace_context::TraceParent;
use event_store::trace_context::hop::{self, Hop};
use opentelemetry::KeyValue;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::metrics::{Histogram, HistogramOpts, LATENCY_BUCKETS, Registry};
use service_kit::retry::Backoff;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use crate::fold::Folded;
use crate::schema::Model;

mod consume;
mod write;

/// The tables of one aggregate type: how to read snapshots back and how to
/// write a folded batch. A fork adds an entity's read model by implementing it.
pub trait Projection: Send + Sync + 'static {
    /// The aggregate folded into these tables.
    type Aggregate: Aggregate;
    /// Where the tables live and their migrations: a schema of this
    /// projection's own, so rebuilding it never touches another's.
    const MODEL: Model;

    /// The current snapshots of these aggregates (missing ones are new).
    fn load(
        &self,
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<Snapshots<Self::Aggregate>, sqlx::Error>> + Send;

    /// Writes what a batch changed, inside the batch's transaction.
    fn write(
        &self,
        conn: &mut PgConnection,
        folded: &Folded<Self::Aggregate>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// Snapshots by aggregate id.
pub type Snapshots<A> = HashMap<Uuid, Snapshot<<A as Aggregate>::State>>;

/// Where the pipeline reads and how it batches.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// The brokers.
    pub kafka: KafkaConfig,
    /// The events topic.
    pub topic: String,
    /// Its partition count.
    pub partitions: i32,
    /// How many lanes the partitions are dealt into (at least 1, at most
    /// one per partition). Each lane has its own consumer and SQL
    /// transactions; fewer lanes make larger batches, so fewer transactions
    /// for the same records, and more lanes let more of PostgreSQL work at once.
    pub lanes: usize,
    /// The consumer group the pipeline names itself with (it commits nothing
    /// there: its position lives in PostgreSQL).
    pub group_id: String,
    /// The most records in one SQL transaction.
    pub max_batch: usize,
    /// How long a batch waits for more records once it has one.
    pub linger: Duration,
}

impl PipelineConfig {
    /// The lanes the pipeline runs: `lanes`, at least 1 and at most one per
    /// partition (each lane holds one connection through its batch).
    pub fn lane_count(&self) -> usize {
        self.lanes.clamp(1, self.partitions.max(1) as usize)
    }
}

/// Next offset to read, per partition.
pub type Positions = BTreeMap<i32, i64>;

/// The bounds of the lag histogram, in seconds: fine where the model should
/// be (tens of ms), coarse beyond.
pub static LAG_BOUNDS: [f64; 19] = [
    0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
    0.5, 1.0, 2.0, 5.0,
];

/// Counters for `/metrics` and progress bars.
#[derive(Debug)]
pub struct PipelineMetrics {
    /// From each record's append (its Kafka timestamp) to the commit of the
    /// SQL transaction that made it visible.
    pub lag: Histogram,
    /// How long writing one batch took (its SQL transaction with offsets).
    pub batch_duration: Histogram,
    /// Batches committed.
    pub batches: AtomicU64,
    /// Records folded (every command, accepted or not).
    pub records: AtomicU64,
    /// Events accepted into the model.
    pub events: AtomicU64,
    /// Records skipped as poison (the state store's pipeline dead-letters them).
    pub poison: AtomicU64,
    /// Failed batches (PostgreSQL or Kafka errors), each retried.
    pub errors: AtomicU64,
    /// Where each partition has got to.
    pub positions: Mutex<Positions>,
    /// Partitions stopped at a record only newer code can read.
    pub stopped: Mutex<BTreeMap<i32, String>>,
}

impl PipelineMetrics {
    /// Empty metrics of the model of `entity` (its label when served).
    pub fn new(entity: &str) -> Self {
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help)
                .const_label("entity", entity)
                .buckets(buckets.to_vec());
            Histogram::with_opts(opts).expect("constant, valid options")
        };
        Self {
            lag: histogram(
                "read_model_lag_seconds",
                "From a record's append to the commit that made it visible in the read model.",
                &LAG_BOUNDS,
            ),
            batch_duration: histogram(
                "read_model_batch_duration_seconds",
                "How long one batch took to write to PostgreSQL, offsets included.",
                LATENCY_BUCKETS,
            ),
            batches: AtomicU64::default(),
            records: AtomicU64::default(),
            events: AtomicU64::default(),
            poison: AtomicU64::default(),
            errors: AtomicU64::default(),
            positions: Mutex::default(),
            stopped: Mutex::default(),
        }
    }
}

impl PipelineMetrics {
    /// Registers the histograms in `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.lag.clone()))?;
        registry.register(Box::new(self.batch_duration.clone()))
    }

    /// A copy of the current positions.
    pub fn positions(&self) -> Positions {
        lock(&self.positions).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The Kafka client could not be created or assigned.
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
}

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    /// The stored offsets are not where this pipeline thought: another writer
    /// (or a swapped-in rebuild) moved them. Nothing was written.
    #[error("the stored offsets moved (expected {expected:?}, found {found:?})")]
    Moved {
        expected: Positions,
        found: Positions,
    },
}

/// How far to go.
#[derive(Clone, Debug)]
pub enum Limit {
    /// Keep folding until shut down.
    Forever,
    /// Stop once every partition's position reaches these offsets, never
    /// folding a record at or past them.
    Until(Positions),
}

/// The pipeline of one projection.
pub struct Pipeline<P: Projection> {
    config: PipelineConfig,
    projection: std::sync::Arc<P>,
    pool: PgPool,
    metrics: std::sync::Arc<PipelineMetrics>,
}

// By hand: a derive would ask for `P: Clone`.
impl<P: Projection> Clone for Pipeline<P> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            projection: self.projection.clone(),
            pool: self.pool.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<P: Projection> Pipeline<P> {
    /// A pipeline writing through `pool` (bound to the model's schema).
    pub fn new(
        config: PipelineConfig,
        projection: P,
        pool: PgPool,
        metrics: std::sync::Arc<PipelineMetrics>,
    ) -> Self {
        Self {
            config,
            projection: std::sync::Arc::new(projection),
            pool,
            metrics,
        }
    }

    /// Folds until `limit` is reached or `shutdown` turns true. PostgreSQL
    /// errors never end it: it backs off, re-reads its offsets and resumes.
    ///
    /// The partitions are dealt into lanes, each with its own consumer and
    /// SQL transactions: an aggregate's records are all in one partition, so
    /// lanes never write the same rows, and PostgreSQL works on one lane's
    /// batch while the others fold theirs. Each lane is a task of its own,
    /// so their decoding and folding run on every core.
    pub async fn run(
        &self,
        limit: Limit,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), PipelineError> {
        let mut lanes = tokio::task::JoinSet::new();
        for partitions in deal(self.config.partitions, self.config.lane_count()) {
            let (lane, limit, shutdown) = (self.clone(), limit.clone(), shutdown.clone());
            lanes.spawn(async move { lane.run_lane(partitions, &limit, shutdown).await });
        }
        // The first failure ends the run; dropping the set stops the other lanes.
        while let Some(finished) = lanes.join_next().await {
            match finished {
                Ok(result) => result?,
                Err(join_error) => match join_error.try_into_panic() {
                    Ok(panic) => std::panic::resume_unwind(panic),
                    // Cancelled: the runtime is shutting down.
                    Err(_) => return Ok(()),
                },
            }
        }
        Ok(())
    }

    async fn run_lane(
        &self,
        lane: Vec<i32>,
        limit: &Limit,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), PipelineError> {
        let consumer: StreamConsumer<QuietEof> = self
            .config
            .kafka
            .self_positioned_consumer_config(&self.config.group_id)
            // Partition ends are reported, so a lane that has everything
            // reads as caught up (`next_batch`).
            .set("enable.partition.eof", "true")
            .create_with_context(QuietEof)?;
        let mut backoff = Backoff::default();
        'resync: loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let mut positions = match self.stored_positions(&lane).await {
                Ok(positions) => positions,
                Err(error) => {
                    self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "cannot read the read model's offsets; retrying");
                    if backoff.wait(&mut shutdown).await {
                        return Ok(());
                    }
                    continue 'resync;
                }
            };
            lock(&self.metrics.positions).extend(positions.clone());
            if reached(limit, &positions) {
                return Ok(());
            }
            self.assign(&consumer, &positions)?;
            tracing::info!(?positions, "read model lane positioned");

            loop {
                let Some(Batch { records, ends }) = self
                    .next_batch(&consumer, &mut shutdown, limit, &positions)
                    .await?
                else {
                    return Ok(());
                };
                if records.is_empty() {
                    self.report(&positions, &ends);
                    continue;
                }
                let span = tracing::debug_span!("read_model_batch", partitions = ?lane, records = records.len());
                let started = std::time::Instant::now();
                let mut hop = Hop::batch(
                    hop::Kind::Consumer,
                    records.iter().filter_map(|r| r.trace),
                    || self.batch_span(&records),
                );
                let written = self
                    .write_batch(&records, &lane, &positions)
                    .instrument(span)
                    .await;
                if let (Some(hop), Err(error)) = (&mut hop, &written) {
                    hop.set_error(|| error.to_string());
                }
                drop(hop);
                self.metrics
                    .batch_duration
                    .observe(started.elapsed().as_secs_f64());
                match written {
                    Ok((next, folded)) => {
                        backoff = Backoff::default();
                        positions = next;
                        self.count(&records, &folded);
                        self.report(&positions, &ends);
                        if reached(limit, &positions) {
                            return Ok(());
                        }
                    }
                    Err(error) => {
                        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, "read model batch not written; resuming from the stored offsets");
                        if matches!(error, BatchError::Database(_))
                            && backoff.wait(&mut shutdown).await
                        {
                            return Ok(());
                        }
                        continue 'resync;
                    }
                }
            }
        }
    }

    /// A batch's span: its name and attributes, by OpenTelemetry's messaging
    /// conventions.
    fn batch_span(&self, records: &[Record<P>]) -> (String, Vec<KeyValue>) {
        let topic = &self.config.topic;
        let first = records.first().map_or(0, |r| r.partition);
        let mut attributes = hop::processing(topic, first, &self.config.group_id);
        // A lane's batch may span partitions; the attribute names one only.
        if records.iter().any(|r| r.partition != first) {
            attributes.retain(|kv| kv.key.as_str() != "messaging.destination.partition.id");
        }
        attributes.extend([
            KeyValue::new("messaging.batch.message_count", records.len() as i64),
            KeyValue::new("db.system.name", "postgresql"),
        ]);
        (format!("process {topic}"), attributes)
    }

    /// Reports where the lane stands: past what it wrote, or at a
    /// partition's end once it reached it (only transaction markers lie
    /// between the stored offset and the end). Never backwards: a batch may
    /// hold records of some of the lane's partitions only, and must not take
    /// back the end another partition reached. The stored offset stays
    /// (writing it would cost a transaction per batch); a restart reads past
    /// the markers again, and repositioning reports the stored offsets anew.
    fn report(&self, positions: &Positions, ends: &Positions) {
        let mut reported = lock(&self.metrics.positions);
        for (&partition, &at) in positions {
            let end = ends.get(&partition).copied().unwrap_or(at);
            let slot = reported.entry(partition).or_insert(at);
            *slot = (*slot).max(at).max(end);
        }
    }

    fn count(&self, records: &[Record<P>], folded: &Folded<P::Aggregate>) {
        let m = &self.metrics;
        let committed_ms = chrono::Utc::now().timestamp_millis();
        for appended in records.iter().filter_map(|r| r.appended_ms) {
            m.lag.observe((committed_ms - appended) as f64 / 1e3);
        }
        m.batches.fetch_add(1, Ordering::Relaxed);
        m.records.fetch_add(records.len() as u64, Ordering::Relaxed);
        m.events
            .fetch_add(folded.accepted.len() as u64, Ordering::Relaxed);
    }
}

/// What one round of consuming gathered.
struct Batch<P: Projection> {
    /// The records, in log order per partition.
    records: Vec<Record<P>>,
    /// Partitions whose end was reached, with the consumer's position there.
    ends: Positions,
}

/// A record of the batch: its place in the log and, unless it was poison,
/// its decoded command batch.
struct Record<P: Projection> {
    partition: i32,
    offset: i64,
    /// When it was appended (ms since the epoch), if the record says.
    appended_ms: Option<i64>,
    /// The span it names (read only when traces are exported).
    trace: Option<TraceParent>,
    batch: Option<domain::aggregate::CommandBatch<<P::Aggregate as Aggregate>::Event>>,
}

/// The partitions `0..partitions` dealt into `lanes` lanes (at least one)
/// like cards: lane `i` gets `i`, `i + lanes`, ...
fn deal(partitions: i32, lanes: usize) -> Vec<Vec<i32>> {
    let lanes = lanes.max(1);
    let mut dealt = vec![Vec::new(); lanes];
    for partition in 0..partitions {
        dealt[partition as usize % lanes].push(partition);
    }
    dealt
}

fn reached(limit: &Limit, positions: &Positions) -> bool {
    match limit {
        Limit::Forever => false,
        Limit::Until(targets) => positions
            .iter()
            .all(|(p, position)| *position >= targets.get(p).copied().unwrap_or(0)),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::{PipelineConfig, deal};

    #[test]
    fn partitions_are_dealt_into_lanes_like_cards() {
        assert_eq!(deal(6, 2), vec![vec![0, 2, 4], vec![1, 3, 5]]);
        assert_eq!(deal(5, 3), vec![vec![0, 3], vec![1, 4], vec![2]]);
    }

    #[test]
    fn lanes_are_at_least_one_and_at_most_one_per_partition() {
        assert_eq!(deal(3, 0), vec![vec![0, 1, 2]]);
        let config = |partitions, lanes| PipelineConfig {
            kafka: event_store::KafkaConfig::new("127.0.0.1:9092", "test"),
            topic: "orders.events".into(),
            partitions,
            lanes,
            group_id: "test".into(),
            max_batch: 1,
            linger: std::time::Duration::ZERO,
        };
        assert_eq!(config(2, 8).lane_count(), 2);
        assert_eq!(config(6, 0).lane_count(), 1);
        assert_eq!(deal(2, config(2, 8).lane_count()), vec![vec![0], vec![1]]);
    }
}
