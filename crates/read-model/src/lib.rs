//! The PostgreSQL read model of orders: lists and histories, exactly once.
//!
//! A second fold of `orders.events`, with the same validation rule from
//! `domain`, into tables the API can filter and page:
//!
//! - [`schema`]: where each entity's tables live ([`Model`]: a PostgreSQL
//!   schema per copy of the model, chosen per connection) and their
//!   migrations.
//! - [`copy`]: binary `COPY` rows, the bulk insert the pipeline writes with.
//! - [`fold`]: pure: a batch of records and the current snapshots in, the
//!   changed snapshots and accepted events out.
//! - [`orders`]: the order tables: loading snapshots, writing a folded batch.
//! - [`pipeline`]: the Kafka consumer that folds batch by batch, each batch
//!   in one SQL transaction with the offsets it covers (exactly-once), and
//!   retries with backoff while PostgreSQL is away.
//! - [`queries`]: what order-service serves from the model.
//! - [`rebuild`]: replays the log into a shadow schema and swaps it in.

pub mod copy;
pub mod fold;
pub mod orders;
pub mod pipeline;
pub mod queries;
pub mod rebuild;
pub mod schema;

pub use pipeline::{Pipeline, PipelineConfig, PipelineMetrics};
pub use schema::{Model, ORDERS, connect};
