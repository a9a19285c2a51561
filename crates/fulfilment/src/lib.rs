//! The fulfilment workflow between orders and inventory, without a
//! distributed transaction: a process manager that reacts to the orders'
//! accepted facts by issuing commands through order-service's API, the same
//! write path as every client's.
//!
//! - [`workflow`]: pure: which steps a fact calls for, and the idempotency
//!   key of each (derived from the fact, so a replay issues the same
//!   commands and the log recognises them).
//! - [`steps`]: carrying the steps out over HTTP and reading their verdicts.
//! - [`consumer`]: reading `orders.changes`; progress is committed only once
//!   every step of the records before it has its verdict.
//! - [`metrics`], `http`: what the workflow did, and its lag, with health on
//!   port 8084.
//! - [`app`], [`config`]: start-up, shutdown and flags.
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod consumer;
mod http;
pub mod metrics;
pub mod steps;
pub mod workflow;

pub use app::Application;
pub use config::Config;
pub use metrics::Metrics;
