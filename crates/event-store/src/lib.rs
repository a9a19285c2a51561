//! Kafka and RocksDB machinery for event-sourced aggregates, generic over the
//! aggregate (`domain::aggregate::Aggregate`).
//!
//! Layout:
//! - [`config`]: connection settings shared by every client of a process.
//! - [`topics`]: the topics an aggregate needs, created and checked at start-up.
//! - [`partitioner`]: which partition a key lands in (Kafka's murmur2).
//! - [`transaction`]: a transactional producer with librdkafka's error rules.
//! - [`appender`]: group commit: concurrent appends share one transaction.
//! - [`store`]: the per-partition RocksDB state store, the registry of owned
//!   partitions, restoring from the changelog, standby copies.
//! - [`processor`]: the exactly-once fold of an events topic into the stores,
//!   the changelog and the changes topic.
//! - [`group`]: who owns which partition, and where it serves, from the
//!   consumer group's own description.
//! - [`metrics`]: histograms of the appender's transactions, to serve.
//! - [`probe`]: is the cluster reachable (readiness).
//! - [`reader`]: reads a topic's committed records up to its current end.
//! - [`positions`]: where consumers stand: a partition's watermarks (asked
//!   again while leaders move), a group's lag, committing a consumer's position.
//! - [`trace_context`]: W3C `traceparent`, carried in record headers from the
//!   request that caused a command to the effects it caused.
//!
//! Only this crate knows rdkafka's and RocksDB's APIs; services see the types
//! defined here.
#![deny(missing_docs)]

pub mod appender;
pub mod config;
pub mod group;
pub mod metrics;
pub mod partitioner;
pub mod positions;
pub mod probe;
pub mod processor;
pub mod reader;
pub mod store;
pub mod topics;
pub mod trace_context;
pub mod transaction;

pub use appender::{AppendError, AppendRecord, Appender, AppenderSettings};
pub use config::KafkaConfig;
pub use partitioner::partition_for_key;
pub use reader::{CommittedRecord, ReadError, read_committed_to_end};
pub use topics::{Replication, StreamTopics, TopicError, TopicSpec, ensure_topics};
pub use transaction::{
    Appended, OutgoingRecord, PendingAppend, TransactionalProducer, TxError, TxErrorKind,
};
