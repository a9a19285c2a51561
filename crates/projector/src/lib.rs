//! The projector: folds each entity type's events (`orders.events`,
//! `inventory.events`) into its RocksDB state store (with its changelog and
//! its `.changes` topic, exactly-once) and its PostgreSQL read model, and
//! serves the state.
//!
//! Layout:
//! - [`config`]: flags with environment fallbacks.
//! - [`entity`]: the list of hosted entity types, and what runs for each.
//! - [`app`]: start-up (every entity, HTTP) and orderly shutdown.
//! - [`http`]: the state API: entities, command outcomes, partitions, health, metrics.
//! - [`routing`]: who owns which partition (from the consumer group), and
//!   forwarding queries to the owner.
//! - [`rebuild`]: the `rebuild-read-model` subcommand.
//! - [`read_model`]: runs the PostgreSQL read model pipeline (crate `read-model`) beside the processor.
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod entity;
pub mod http;
pub mod read_model;
pub mod rebuild;
pub mod routing;

pub use app::Application;
pub use config::Config;
