//! The exactly-once processor: consumes an aggregate's events topic in a
//! consumer group, judges every command batch with the shared validation rule,
//! and commits per interval one Kafka transaction with the changelog, the
//! accepted changes and the consumed offsets; then the local stores.
//!
//! Everything here runs on one dedicated thread (librdkafka's transaction and
//! poll calls block). Rebalance callbacks run inside `poll` on that thread:
//! a revoke commits the open transaction, a lost assignment aborts it, an
//! assignment restores the stores before folding.

mod fold;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use domain::aggregate::{Aggregate, Verdict};
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::group::member_client_id;
use crate::store::{Registry, RestoreError, StoreError, StoreOptions, is_end_of_partition};
use crate::transaction::{TransactionalProducer, TxError};
use crate::{KafkaConfig, StreamTopics};
use fold::Fold;
pub use fold::decode;

/// What a command came to, as the processor recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// The aggregate it was for.
    pub aggregate_id: Uuid,
    /// The events topic partition it was read from.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// The verdict of the validation rule.
    pub verdict: Verdict,
}

/// How the processor runs.
#[derive(Clone)]
pub struct ProcessorConfig {
    /// The brokers.
    pub kafka: KafkaConfig,
    /// The aggregate's topics.
    pub topics: StreamTopics,
    /// The consumer group; also the prefix of the transactional id.
    pub group_id: String,
    /// Stable per instance: its static group membership and transactional id.
    pub instance_id: String,
    /// Where this instance's HTTP API is reachable (`host:port`), told to
    /// the group so other members can route queries here.
    pub advertised_addr: String,
    /// How long the group waits for a silent member before giving its
    /// partitions to others.
    pub session_timeout: Duration,
    /// Where the partition stores live.
    pub state_dir: PathBuf,
    /// How long a transaction gathers records before it commits.
    pub commit_interval: Duration,
    /// RocksDB settings.
    pub store_options: StoreOptions,
    /// Fault injection for tests: abort the process right after this many
    /// Kafka commits, before the stores are written (the narrowest window a
    /// `kill -9` can hit). `None` in production.
    pub crash_after_commits: Option<u64>,
}

impl ProcessorConfig {
    /// A crashed instance's open transaction holds its offsets (and so the
    /// takeover of its partitions) until the broker aborts it: no longer
    /// than the group takes to notice the crash, and never longer than usual.
    pub fn transaction_timeout(&self) -> Duration {
        self.session_timeout
            .min(crate::transaction::TRANSACTION_TIMEOUT)
    }
}

/// Why the processor stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// A transaction call failed beyond recovery.
    #[error(transparent)]
    Transaction(#[from] TxError),
    /// The consumer failed.
    #[error("Kafka consumer: {0}")]
    Kafka(#[from] KafkaError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Restoring a store failed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// A snapshot or outcome could not be (de)serialized.
    #[error("encoding: {0}")]
    Encode(String),
    /// The consumer is not in a group yet, so offsets cannot be committed.
    #[error("no consumer group metadata: offsets cannot be committed")]
    NoGroupMetadata,
    /// A partition's committed offset could not be read at its takeover.
    #[error("the committed offset of partition {partition} could not be read: {source}")]
    OffsetUnreadable {
        /// The partition.
        partition: i32,
        /// The error the group coordinator answered for it.
        source: KafkaError,
    },
}

impl From<serde_json::Error> for ProcessorError {
    fn from(error: serde_json::Error) -> Self {
        ProcessorError::Encode(error.to_string())
    }
}

/// The consumer's context: owns the fold, so rebalance callbacks can commit,
/// abort and restore on the consumer thread at the right moment.
struct FoldContext<A: Aggregate> {
    fold: Arc<Mutex<Fold<A>>>,
    registry: Arc<Registry>,
    events_topic: String,
}

impl<A: Aggregate> FoldContext<A> {
    fn lock(&self) -> MutexGuard<'_, Fold<A>> {
        lock(&self.fold)
    }
}

impl<A: Aggregate> ClientContext for FoldContext<A> {
    fn error(&self, error: KafkaError, reason: &str) {
        // The end of a partition is an event the fold uses, not a failure.
        if !is_end_of_partition(&error) {
            tracing::error!(%error, reason, "librdkafka error");
        }
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.events_topic) else {
            return;
        };
        for handle in self.registry.owned() {
            if let Some(partition) = topic.partitions.get(&handle.partition) {
                // The last stable offset is the end a read_committed consumer
                // can reach; the high watermark is beyond it while a
                // transaction is open.
                if partition.ls_offset >= 0 {
                    handle.set_ends(partition.ls_offset, partition.hi_offset);
                }
            }
        }
    }
}

fn lock<A: Aggregate>(fold: &Mutex<Fold<A>>) -> MutexGuard<'_, Fold<A>> {
    // A panic while holding the lock poisons it; the state it guards is
    // still the fold's, which recovers through its own error handling.
    fold.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn partitions(list: &TopicPartitionList) -> Vec<i32> {
    list.elements().iter().map(|e| e.partition()).collect()
}

impl<A: Aggregate> ConsumerContext for FoldContext<A> {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        let mut fold = self.lock();
        if consumer.assignment_lost() {
            tracing::warn!("assignment lost: aborting the open transaction");
            fold.abort_lost(&partitions(revoked));
            self.registry.set_joined(false);
            return;
        }
        if let Err(error) = fold.commit(consumer) {
            fold.failure.get_or_insert(error);
        }
        fold.release(&partitions(revoked));
        self.registry.set_joined(false);
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(assigned) = rebalance else {
            return;
        };
        let mut fold = self.lock();
        let owned = fold.owned();
        let new: Vec<i32> = partitions(assigned)
            .into_iter()
            .filter(|p| !owned.contains(p))
            .collect();
        if let Err(error) = fold.adopt(consumer, &new) {
            fold.failure.get_or_insert(error);
        }
        self.registry.set_joined(true);
    }
}

/// Runs the processor until `stop` is set or it fails; blocks the calling
/// thread. On stop it commits what it folded before returning.
pub fn run<A: Aggregate>(
    config: ProcessorConfig,
    registry: Arc<Registry>,
    stop: Arc<AtomicBool>,
) -> Result<(), ProcessorError> {
    let config = Arc::new(config);
    let transactional_id = format!("{}-{}", config.group_id, config.instance_id);
    let producer = TransactionalProducer::with_timeout(
        &config.kafka,
        &transactional_id,
        config.transaction_timeout(),
    )?;
    let fold = Arc::new(Mutex::new(Fold::new(
        config.clone(),
        producer,
        registry.clone(),
    )));
    loop {
        let context = FoldContext::<A> {
            fold: fold.clone(),
            registry: registry.clone(),
            events_topic: config.topics.events.clone(),
        };
        let consumer = member(&config, context)?;
        consumer.subscribe(&[&config.topics.events])?;
        tracing::info!(group = %config.group_id, instance = %config.instance_id, "processor started");
        let ended = fold_until_stopped(&consumer, &config, &stop)?;
        // Closing a fenced consumer runs its rebalance callbacks against a
        // client being destroyed; what fails there is that member's, not
        // the next one's.
        drop(consumer);
        if let Some(error) = lock(&fold).failure.take() {
            tracing::debug!(%error, "closing the old consumer failed");
        }
        match ended {
            Membership::Stopped => break,
            // librdkafka fences a static member whose session expired (a
            // coordinator failover longer than the session) by its own new
            // join; the consumer is dead for good (librdkafka#3437). The
            // lost assignment was released already: join again.
            Membership::Fenced(error) => {
                tracing::warn!(%error, "the consumer was fenced; joining the group again");
                registry.set_joined(false);
            }
            Membership::Retake(error) => {
                tracing::warn!(%error, "taking partitions over failed; joining the group again");
                registry.set_joined(false);
            }
            // Closing the old consumer committed its work and released its
            // partitions; the new one takes them back (static membership:
            // without a rebalance for the others).
            Membership::Stalled(stalls) => {
                let stalls: Vec<String> = stalls.iter().map(ToString::to_string).collect();
                tracing::warn!(
                    stalls = stalls.join("; "),
                    "the consumer stopped fetching partitions the broker has records for; \
                     replacing it"
                );
                registry.set_joined(false);
            }
        }
    }
    tracing::info!("processor stopped after committing its work");
    Ok(())
}

/// Why a consumer's run ended.
enum Membership {
    /// `stop` was set; the work folded so far is committed.
    Stopped,
    /// The consumer hit a fatal error and must be replaced.
    Fenced(KafkaError),
    /// The consumer stopped fetching these partitions and must be replaced.
    Stalled(Vec<fold::Stall>),
    /// Taking partitions over failed; a new consumer tries again.
    Retake(ProcessorError),
}

/// The group member that feeds the fold.
fn member<A: Aggregate>(
    config: &ProcessorConfig,
    context: FoldContext<A>,
) -> Result<BaseConsumer<FoldContext<A>>, KafkaError> {
    let mut client = config.kafka.client_config();
    crate::config::prefetch_bounded(&mut client);
    client
        .set("group.id", &config.group_id)
        .set(
            "client.id",
            member_client_id(&config.instance_id, &config.advertised_addr),
        )
        // Static membership: a restarted instance takes its partitions back
        // at once instead of waiting for the session to time out.
        .set("group.instance.id", &config.instance_id)
        .set(
            "session.timeout.ms",
            config.session_timeout.as_millis().to_string(),
        )
        // Frequent heartbeats: the others learn of a rebalance (and so of a
        // crashed member's partitions) within a tenth of the session timeout.
        .set(
            "heartbeat.interval.ms",
            (config.session_timeout / 10)
                .as_millis()
                .max(100)
                .to_string(),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("partition.assignment.strategy", "range")
        // A writer waits for its command to be folded: an idle partition's
        // fetch must not sit on the broker for the default 500 ms.
        .set("fetch.wait.max.ms", "10")
        // Reaching the end moves the folded position past the last
        // transaction marker: a read that waits for "everything so far"
        // after a takeover is not left one marker short.
        .set("enable.partition.eof", "true")
        .set("statistics.interval.ms", "1000")
        .create_with_context(context)
}

/// How often the fold looks for partitions the consumer stopped fetching.
const STALL_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Polls and folds until `stop` is set, a fatal consumer error, or a failure.
fn fold_until_stopped<A: Aggregate>(
    consumer: &BaseConsumer<FoldContext<A>>,
    config: &ProcessorConfig,
    stop: &AtomicBool,
) -> Result<Membership, ProcessorError> {
    let mut next_commit = Instant::now() + config.commit_interval;
    let mut next_stall_check = Instant::now() + STALL_CHECK_INTERVAL;
    while !stop.load(Ordering::Relaxed) {
        let message = consumer.poll(next_commit.saturating_duration_since(Instant::now()));
        let mut fold = consumer.context().lock();
        match message {
            Some(Ok(message)) => fold.fold_record(consumer, &message)?,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                fold.reached_end(consumer, partition);
            }
            Some(Err(error)) => tracing::warn!(%error, "consumer error"),
            None => {}
        }
        // A fatal consumer error may surface in the poll's result or only in
        // a rebalance callback that then failed: either way, this member is
        // gone, and nothing open may be committed by it.
        if let Some((code, reason)) = consumer.client().fatal_error() {
            fold.abort_all();
            if let Some(error) = fold.failure.take() {
                tracing::debug!(%error, "after the consumer's fatal error");
            }
            tracing::warn!(?code, reason, "fatal consumer error");
            return Ok(Membership::Fenced(KafkaError::MessageConsumptionFatal(
                code,
            )));
        }
        if Instant::now() >= next_commit {
            fold.commit(consumer)?;
            next_commit = Instant::now() + config.commit_interval;
        }
        match fold.failure.take() {
            // A takeover that could not read where to start is tried again
            // by a new member, with nothing of it kept.
            Some(error @ ProcessorError::OffsetUnreadable { .. }) => {
                fold.abort_all();
                return Ok(Membership::Retake(error));
            }
            Some(error) => return Err(error),
            None => {}
        }
        if Instant::now() >= next_stall_check {
            next_stall_check = Instant::now() + STALL_CHECK_INTERVAL;
            let stalls = fold.stalls(consumer);
            if !stalls.is_empty() {
                return Ok(Membership::Stalled(stalls));
            }
        }
    }
    consumer.context().lock().commit(consumer)?;
    Ok(Membership::Stopped)
}
