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

use service_kit::metrics::{self, HistogramVec, IntCounter, IntCounterVec, Registry};

use crate::effects::Kind;

/// What the notifier measures, served at `/metrics` (with values read from
/// the effects table and the consumer at scrape time).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Everything below.
    pub registry: Registry,
    /// Effects by `kind` (`email`, `webhook`) and `outcome`: `recorded`
    /// pending (one per destination), `skipped` (recorded before: a replay),
    /// `sent`, `retried` (an attempt failed and is scheduled again),
    /// `failed` (given up and dead-lettered).
    effects: IntCounterVec,
    /// From an effect's recording to its delivery, by `kind`.
    delivery: HistogramVec,
    /// Records written to the notifier's dead-letter topic.
    pub dead_lettered: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let effects = metrics::counter_vec(
            &registry,
            "notifier_effects_total",
            "Effects by kind and outcome: recorded, skipped (a replay), sent, retried, failed.",
            &["kind", "outcome"],
        );
        let delivery = metrics::histogram_vec(
            &registry,
            "notifier_effect_delivery_seconds",
            "From an effect's recording to its delivery, retries included.",
            &["kind"],
            metrics::LATENCY_BUCKETS,
        );
        let dead_lettered = metrics::counter(
            &registry,
            "notifier_dead_lettered_total",
            "Records written to the notifier's dead-letter topic.",
        );
        Self {
            registry,
            effects,
            delivery,
            dead_lettered,
        }
    }
}

impl Metrics {
    /// Counts `count` effects of `kind` that came to `outcome`.
    pub fn effects(&self, kind: Kind, outcome: &str, count: usize) {
        self.effects
            .with_label_values(&[kind.as_str(), outcome])
            .inc_by(count as u64);
    }

    /// Counts a delivery `seconds` after the effect was recorded.
    pub fn delivered(&self, kind: Kind, seconds: f64) {
        self.effects(kind, "sent", 1);
        self.delivery
            .with_label_values(&[kind.as_str()])
            .observe(seconds);
    }
}
