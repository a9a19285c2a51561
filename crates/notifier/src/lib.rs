//! The notifier: the side effects of accepted events of every entity type
//! (e-mails and signed webhooks), each performed once as far as the effects
//! table can tell, at least once (or at most once, per kind) as far as the
//! outside world can.
//!
//! - [`effects`]: pure: which e-mails and webhooks a change causes, each
//!   with a stable id (`<kind>:<event id>`); one module per entity type.
//! - [`signature`]: Standard Webhooks signing, and the verifier receivers use.
//! - [`delivery`]: one attempt (SMTP with lettre, HTTP with reqwest) and what
//!   its answer means; backoff with jitter.
//! - [`ledger`]: the effects table in PostgreSQL (schema `notifier`): an
//!   effect is recorded pending, claimed when due, and settled.
//! - [`ingest`]: the consumer of every `.changes` topic: effects recorded
//!   pending (one per destination) before the input's offsets are committed.
//! - [`lanes`]: delivery, one lane per destination; the retry schedule.
//! - [`dead_letters`]: unreadable records and effects given up.
//! - [`operate`], [`http`]: what operators do (list, resend, enable an
//!   endpoint again), health and metrics on port 8082.
//! - [`app`], [`config`]: start-up and flags.
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod dead_letters;
pub mod delivery;
pub mod effects;
pub mod http;
pub mod ingest;
pub mod lanes;
pub mod ledger;
pub mod operate;
pub mod signature;

pub use app::Application;
pub use config::Config;

use std::sync::atomic::AtomicU64;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Effects recorded pending (one per destination).
    pub recorded: AtomicU64,
    /// Effects delivered.
    pub sent: AtomicU64,
    /// Attempts that failed and were scheduled again.
    pub retried: AtomicU64,
    /// Effects given up (dead-lettered).
    pub failed: AtomicU64,
    /// Records written to the notifier's dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Effects found recorded already (replays).
    pub skipped: AtomicU64,
}
