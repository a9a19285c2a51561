//! Bringing a partition's store up to what Kafka committed, from the changelog.
//!
//! The store knows the changelog position it reflects, so a store that is
//! current reads nothing, one that missed its last commit (a crash between the
//! Kafka commit and the local write) reads only that tail, and an empty one
//! reads the whole partition.

use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use uuid::Uuid;

use super::{PartitionStore, Positions, StoreError};
use crate::{KafkaConfig, positions};

/// Records written to RocksDB per batch while restoring.
const RESTORE_BATCH: usize = 10_000;
/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How long a watermark request or one poll of the changelog may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a partition could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The store claims a changelog position beyond the changelog's end: it
    /// belongs to another history (say, topics recreated). Wipe it and restore
    /// from the beginning.
    #[error("the store is at changelog offset {store}, beyond the changelog's end {end}")]
    StoreAhead {
        /// The store's position.
        store: i64,
        /// The changelog's high watermark.
        end: i64,
    },
    /// Kafka failed.
    #[error("reading the changelog failed: {0}")]
    Kafka(#[from] KafkaError),
    /// RocksDB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// True for the "end of partition" event, which a reader to the end expects.
pub(crate) fn is_end_of_partition(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::PartitionEOF(_)
            | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
    )
}

/// True for consumer errors librdkafka recovers from by itself: a broker
/// restarting or unreachable for a moment, a leader moving. The consumer
/// reports them and goes on fetching, so a reader waits rather than fails.
pub(crate) fn is_transient(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    let code = match error {
        KafkaError::MessageConsumption(code) | KafkaError::Global(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        Code::BrokerTransportFailure
            | Code::AllBrokersDown
            | Code::OperationTimedOut
            | Code::RequestTimedOut
            | Code::NotLeaderForPartition
            | Code::LeaderNotAvailable
            | Code::NetworkException
            | Code::NotCoordinator
            | Code::CoordinatorNotAvailable
            | Code::CoordinatorLoadInProgress
            | Code::UnknownLeaderEpoch
            | Code::FencedLeaderEpoch
            | Code::OffsetNotAvailable
    )
}

/// A consumer context for consumers that are told of partition ends
/// (`enable.partition.eof`): the end is expected, not an error worth a log
/// line.
pub struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        if !is_end_of_partition(&error) {
            tracing::error!(%error, reason, "librdkafka error");
        }
    }
}

impl ConsumerContext for QuietEof {}

/// A changelog record as a store entry: the aggregate id (its key) and the
/// snapshot (`None` deletes). A record without an id key is logged and skipped.
pub(crate) fn changelog_entry(message: &impl Message) -> Option<(Uuid, Option<Vec<u8>>)> {
    let id = message
        .key()
        .and_then(|k| std::str::from_utf8(k).ok())
        .and_then(|k| Uuid::parse_str(k).ok());
    if id.is_none() {
        tracing::warn!(
            partition = message.partition(),
            offset = message.offset(),
            "changelog record without an id key; skipped"
        );
    }
    Some((id?, message.payload().map(<[u8]>::to_vec)))
}

/// Applies the changelog of `partition` from the store's position to its
/// current end, then records `input_position` as the store's input position.
/// Returns how many records were applied.
pub fn restore_partition(
    config: &KafkaConfig,
    changelog: &str,
    partition: i32,
    store: &PartitionStore,
    input_position: i64,
) -> Result<u64, RestoreError> {
    let consumer: BaseConsumer<QuietEof> = config
        .read_to_end_config("restore")
        .create_with_context(QuietEof)?;
    let (low, high) = positions::fetch_watermarks(&consumer, changelog, partition, KAFKA_TIMEOUT)?;
    let start = store.positions()?;
    if start.changelog > high {
        return Err(RestoreError::StoreAhead {
            store: start.changelog,
            end: high,
        });
    }
    let mut position = Positions {
        input: start.input,
        changelog: start.changelog.max(low),
    };

    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(changelog, partition, Offset::Offset(position.changelog))?;
    consumer.assign(&assignment)?;

    let started = Instant::now();
    let mut last_report = started;
    let mut applied = 0u64;
    let mut batch: Vec<(Uuid, Option<Vec<u8>>)> = Vec::with_capacity(RESTORE_BATCH);
    loop {
        match consumer.poll(KAFKA_TIMEOUT) {
            Some(Ok(message)) => {
                position.changelog = message.offset() + 1;
                batch.extend(changelog_entry(&message));
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(error)) if is_transient(&error) => {
                tracing::warn!(partition, %error, "changelog read interrupted; the consumer retries");
            }
            Some(Err(error)) => return Err(error.into()),
            None => tracing::warn!(partition, "no changelog data for 30 s; still waiting"),
        }
        if batch.len() >= RESTORE_BATCH {
            applied += batch.len() as u64;
            store.restore(&batch, position)?;
            batch.clear();
        }
        if last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            tracing::info!(
                partition,
                applied,
                offset = position.changelog,
                end = high,
                per_second = (applied as f64 / started.elapsed().as_secs_f64()) as u64,
                "restoring from the changelog"
            );
        }
    }
    applied += batch.len() as u64;
    position.input = input_position;
    store.restore(&batch, position)?;
    if applied > 0 {
        let elapsed = started.elapsed();
        tracing::info!(
            partition,
            applied,
            seconds = elapsed.as_secs_f64(),
            per_second = (applied as f64 / elapsed.as_secs_f64().max(1e-9)) as u64,
            "restored from the changelog"
        );
    }
    Ok(applied)
}
