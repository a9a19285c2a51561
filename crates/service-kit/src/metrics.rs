//! `/metrics` in the Prometheus text format, kept by the `prometheus` crate.
//!
//! Two kinds of metrics meet in one answer. Live ones (histograms, counters
//! of what a request did) sit in a service's long-lived [`Registry`] and are
//! updated where things happen. Values the running system already holds (a
//! partition's lag, the fold's counters, rows in a table) are read at scrape
//! time into a [`Snapshot`], so the hot paths keep their plain atomics.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus::core::Collector;
use prometheus::{CounterVec, Encoder, GaugeVec, Opts, TextEncoder};

pub use event_store::metrics::{LATENCY_BUCKETS, SIZE_BUCKETS};
pub use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry,
};

/// Labels of one sample: `[("partition", "3")]`.
pub type Labels = Vec<(&'static str, String)>;

/// A histogram with `labels`, registered in `registry`.
///
/// # Panics
/// When `name` is registered twice: names are constants, so that is a bug
/// a start-up test meets.
pub fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let histogram = HistogramVec::new(opts, labels).expect("valid histogram options");
    register(registry, histogram.clone());
    histogram
}

/// A counter with `labels`, registered in `registry` (see [`histogram_vec`]).
pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter options");
    register(registry, counter.clone());
    counter
}

/// A counter without labels, registered in `registry` (see [`histogram_vec`]).
pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).expect("valid counter options");
    register(registry, counter.clone());
    counter
}

/// A gauge without labels, registered in `registry` (see [`histogram_vec`]).
pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let gauge = IntGauge::new(name, help).expect("valid gauge options");
    register(registry, gauge.clone());
    gauge
}

/// Registers a collector (see [`histogram_vec`] for why it may panic).
pub fn register(registry: &Registry, collector: impl Collector + 'static) {
    registry
        .register(Box::new(collector))
        .expect("metric names are registered once");
}

/// Values read from the running system at scrape time.
#[derive(Default)]
pub struct Snapshot {
    registry: Registry,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a counter without labels.
    pub fn counter(self, name: &str, help: &str, value: u64) -> Self {
        self.counters(name, help, &[(Vec::new(), value as f64)])
    }

    /// Adds a counter with one sample per label set.
    pub fn counters(self, name: &str, help: &str, samples: &[(Labels, f64)]) -> Self {
        self.family(
            samples,
            |labels| CounterVec::new(Opts::new(name, help), labels),
            |counter, labels, value| counter.with_label_values(labels).inc_by(value),
        )
    }

    /// Adds a gauge with one sample per label set.
    pub fn gauge(self, name: &str, help: &str, samples: &[(Labels, f64)]) -> Self {
        self.family(
            samples,
            |labels| GaugeVec::new(Opts::new(name, help), labels),
            |gauge, labels, value| gauge.with_label_values(labels).set(value),
        )
    }

    /// Registers a family with these samples; none, no family.
    fn family<F: Collector + Clone + 'static>(
        self,
        samples: &[(Labels, f64)],
        build: impl FnOnce(&[&str]) -> prometheus::Result<F>,
        set: impl Fn(&F, &[&str], f64),
    ) -> Self {
        let Some((first, _)) = samples.first() else {
            return self;
        };
        let label_names: Vec<&str> = first.iter().map(|(name, _)| *name).collect();
        let family = build(&label_names).expect("valid metric options");
        for (labels, value) in samples {
            let values: Vec<&str> = labels.iter().map(|(_, value)| value.as_str()).collect();
            set(&family, &values, *value);
        }
        register(&self.registry, family);
        self
    }

    /// The live metrics and these, as a `/metrics` response.
    pub fn respond(self, live: &Registry) -> Response {
        let mut families = live.gather();
        families.extend(self.registry.gather());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let encoder = TextEncoder::new();
        let mut body = String::new();
        match encoder.encode_utf8(&families, &mut body) {
            Ok(()) => ([(header::CONTENT_TYPE, encoder.format_type())], body).into_response(),
            Err(error) => {
                tracing::error!(%error, "could not encode the metrics");
                crate::Problem::internal().into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::{LATENCY_BUCKETS, Registry, Snapshot, histogram_vec};

    async fn text(snapshot: Snapshot, live: &Registry) -> String {
        let body = to_bytes(snapshot.respond(live).into_body(), usize::MAX)
            .await
            .expect("a body in memory");
        String::from_utf8(body.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn live_histograms_and_scraped_values_share_one_answer() {
        let live = Registry::new();
        let latency = histogram_vec(&live, "x_seconds", "Latency.", &["kind"], LATENCY_BUCKETS);
        for seconds in [0.004, 0.04, 3.0] {
            latency.with_label_values(&["a"]).observe(seconds);
        }
        let snapshot = Snapshot::new()
            .counter("x_done_total", "Done.", 7)
            .gauge(
                "x_lag",
                "Lag.",
                &[
                    (vec![("partition", "0".into())], 0.0),
                    (vec![("partition", "1".into())], 4.0),
                ],
            )
            .gauge("x_empty", "Nothing to show.", &[]);
        let text = text(snapshot, &live).await;
        for line in [
            "# TYPE x_seconds histogram",
            "x_seconds_bucket{kind=\"a\",le=\"0.005\"} 1",
            "x_seconds_bucket{kind=\"a\",le=\"0.05\"} 2",
            "x_seconds_bucket{kind=\"a\",le=\"+Inf\"} 3",
            "x_seconds_count{kind=\"a\"} 3",
            "# TYPE x_done_total counter",
            "x_done_total 7",
            "# TYPE x_lag gauge",
            "x_lag{partition=\"0\"} 0",
            "x_lag{partition=\"1\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("x_empty"), "{text}");
    }
}
