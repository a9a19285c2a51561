//! The PostgreSQL read models: lists and histories, exactly once.
//!
//! A second fold of each entity's events (`orders.events`,
//! `inventory.events`), with the same validation rule from `domain`, into
//! tables the API can filter and page:
//!
//! - [`schema`]: where each entity's tables live ([`Model`]: a PostgreSQL
//!   schema per copy of the model, chosen per connection) and their
//!   migrations.
//! - [`copy`]: binary `COPY` rows, the bulk insert the pipeline writes with
//!   (`nodelay` keeps each `COPY` from waiting out a delayed ACK).
//! - [`fold`]: pure: a batch of records and the current snapshots in, the
//!   changed snapshots and accepted events out.
//! - [`tables`]: what every entity's tables share: the snapshot column and
//!   the history of accepted events.
//! - [`orders`]: the order tables: loading snapshots, writing a folded batch.
//! - [`inventory`]: the stock tables: the same, and their queries.
//! - [`pipeline`]: the Kafka consumer that folds batch by batch, each batch
//!   in one SQL transaction with the offsets it covers (exactly-once), and
//!   retries with backoff while PostgreSQL is away.
//! - [`queries`]: what order-service serves from the orders' model.
//! - [`rebuild`]: replays the log into a shadow schema and swaps it in.

pub mod copy;
pub mod fold;
pub mod inventory;
mod nodelay;
pub mod orders;
pub mod pipeline;
pub mod queries;
pub mod rebuild;
pub mod schema;
pub mod tables;

pub use pipeline::{Pipeline, PipelineConfig, PipelineMetrics};
pub use schema::{INVENTORY, Model, ORDERS, connect};
