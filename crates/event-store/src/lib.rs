//! Kafka machinery for event-sourced aggregates, generic over the aggregate.
//!
//! Layout:
//! - [`config`]: connection settings shared by every client of a process.
//! - [`topics`]: the topics an aggregate needs, created and checked at start-up.
//! - [`transaction`]: a transactional producer with librdkafka's error rules.
//! - [`reader`]: reads a topic's committed records up to its current end.
//!
//! Only this crate knows rdkafka's API; services see the types defined here.
#![deny(missing_docs)]

pub mod config;
pub mod reader;
pub mod topics;
pub mod transaction;

pub use config::KafkaConfig;
pub use reader::{CommittedRecord, ReadError, read_committed_to_end};
pub use topics::{StreamTopics, TopicError, TopicSpec, ensure_topics};
pub use transaction::{
    Appended, OutgoingRecord, PendingAppend, TransactionalProducer, TxError, TxErrorKind,
};
