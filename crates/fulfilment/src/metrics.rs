//! What the workflow did, served at `/metrics`.

use std::time::Duration;

use reqwest::StatusCode;
use service_kit::metrics::{self, HistogramVec, IntCounterVec, Registry};

/// The workflow's counters and histograms.
pub struct Metrics {
    /// Everything below.
    pub registry: Registry,
    /// Facts read, by the plan they called for (`reserve`, `release`,
    /// `commit`, `nothing`), or `skipped` (not a change record).
    facts: IntCounterVec,
    /// Commands with a verdict, by step and HTTP status.
    steps: IntCounterVec,
    /// Commands sent again after no verdict (a 5xx, or no answer), by step.
    retries: IntCounterVec,
    /// From a command's first attempt to its verdict, by step.
    step_seconds: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let facts = metrics::counter_vec(
            &registry,
            "fulfilment_facts_total",
            "Facts read, by the plan they called for, or skipped (not a change record).",
            &["plan"],
        );
        let steps = metrics::counter_vec(
            &registry,
            "fulfilment_steps_total",
            "Commands sent to order-service that have a verdict, by step and HTTP status.",
            &["step", "status"],
        );
        let retries = metrics::counter_vec(
            &registry,
            "fulfilment_step_retries_total",
            "Commands sent again after a 5xx or no answer, by step.",
            &["step"],
        );
        let step_seconds = metrics::histogram_vec(
            &registry,
            "fulfilment_step_seconds",
            "From a command's first attempt to its verdict, retries included, by step.",
            &["step"],
            metrics::LATENCY_BUCKETS,
        );
        Self {
            registry,
            facts,
            steps,
            retries,
            step_seconds,
        }
    }
}

impl Metrics {
    /// Counts a fact that called for `plan`.
    pub(crate) fn fact(&self, plan: &str) {
        self.facts.with_label_values(&[plan]).inc();
    }

    /// Counts a step's verdict, `took` after its first attempt.
    pub(crate) fn verdict(&self, step: &str, status: StatusCode, took: Duration) {
        self.steps.with_label_values(&[step, status.as_str()]).inc();
        self.step_seconds
            .with_label_values(&[step])
            .observe(took.as_secs_f64());
    }

    /// Counts a step sent again.
    pub(crate) fn retried(&self, step: &str) {
        self.retries.with_label_values(&[step]).inc();
    }
}
