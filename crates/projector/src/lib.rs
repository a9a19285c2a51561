//! The projector: folds `orders.events` into the RocksDB state store (with its
//! changelog and the `orders.changes` topic, exactly-once) and serves the state.
//!
//! Layout:
//! - [`config`]: flags with environment fallbacks.
//! - [`app`]: start-up (topics, stores, HTTP) and orderly shutdown.
//! - [`http`]: the state API: orders, command outcomes, partitions, health, metrics.
//! - [`routing`]: who owns which partition (from the consumer group), and
//!   forwarding queries to the owner.
//! - [`rebuild`]: the `rebuild-read-model` subcommand.
//! - [`read_model`]: runs the PostgreSQL read model pipeline (crate `read-model`) beside the processor.
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod http;
pub mod read_model;
pub mod rebuild;
pub mod routing;

pub use app::Application;
pub use config::Config;
