//! Histograms of the machinery's own work, in the `prometheus` crate's
//! types, for a service to register and serve.

use prometheus::{Histogram, HistogramOpts, HistogramVec};

/// Upper bounds, in seconds, for latencies of a millisecond to tens of
/// seconds: fine where a healthy system sits, coarse where a failover does.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
    30.0,
];

/// Upper bounds for sizes (records in a transaction, rows in a batch).
pub const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// What the appender's transactions take. Cheap to clone (shared counts).
#[derive(Clone, Debug)]
pub struct AppendMetrics {
    /// From `begin` to the end of the commit, by `outcome` (`committed`,
    /// `failed`).
    pub duration: HistogramVec,
    /// Records per transaction.
    pub records: Histogram,
}

impl Default for AppendMetrics {
    fn default() -> Self {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "event_store_append_transaction_duration_seconds",
                "How long the appender's Kafka transactions take, from begin to committed or failed.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["outcome"],
        )
        .expect("constant, valid options");
        let records = Histogram::with_opts(
            HistogramOpts::new(
                "event_store_append_transaction_records",
                "Records in one of the appender's transactions (commands sharing it).",
            )
            .buckets(SIZE_BUCKETS.to_vec()),
        )
        .expect("constant, valid options");
        Self { duration, records }
    }
}

impl AppendMetrics {
    /// Registers both histograms.
    pub fn register(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.duration.clone()))?;
        registry.register(Box::new(self.records.clone()))
    }
}
