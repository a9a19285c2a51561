//! Reads a topic's committed records, from the beginning to its current end.
//!
//! For checks and tools that need the whole log at once (tests that compute the
//! fold independently, audits); services consume continuously instead.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::{Offset, TopicPartitionList};

use crate::KafkaConfig;
use crate::store::{QuietEof, is_transient};

/// One record as a `read_committed` consumer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedRecord {
    /// The partition.
    pub partition: i32,
    /// The offset within it.
    pub offset: i64,
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// The value, if any.
    pub payload: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Why a topic could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The broker or client failed.
    #[error("reading `{topic}` failed: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// The cause.
        #[source]
        source: KafkaError,
    },
    /// No record and no end-of-partition came within the bound.
    #[error("reading `{topic}` stalled: nothing arrived for {idle:?}")]
    Stalled {
        /// The topic.
        topic: String,
        /// How long nothing arrived.
        idle: Duration,
    },
}

/// Every committed record of `topic`, partition by partition in offset order,
/// up to each partition's end as of the read (its last stable offset: records
/// of transactions still open are not included, aborted ones never are).
pub async fn read_committed_to_end(
    config: &KafkaConfig,
    topic: &str,
) -> Result<Vec<CommittedRecord>, ReadError> {
    let kafka = |source| ReadError::Kafka {
        topic: topic.to_owned(),
        source,
    };
    let consumer: StreamConsumer<QuietEof> = config
        .read_to_end_config("reader")
        .create_with_context(QuietEof)
        .map_err(kafka)?;

    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(kafka)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(kafka)?;
    }
    consumer.assign(&assignment).map_err(kafka)?;

    let idle = Duration::from_secs(30);
    let mut open: BTreeSet<i32> = partitions.into_iter().collect();
    let mut records = Vec::new();
    while !open.is_empty() {
        let next = tokio::time::timeout(idle, consumer.recv())
            .await
            .map_err(|_| ReadError::Stalled {
                topic: topic.to_owned(),
                idle,
            })?;
        match next {
            Ok(message) => records.push(CommittedRecord {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().map(<[u8]>::to_vec),
                headers: message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Err(KafkaError::PartitionEOF(partition)) => {
                open.remove(&partition);
            }
            Err(error) if is_transient(&error) => {
                tracing::warn!(%error, "read interrupted; the consumer retries");
            }
            Err(error) => return Err(kafka(error)),
        }
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}
