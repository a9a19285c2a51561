//! The Prometheus text exposition format, and a histogram to fill.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram of durations with fixed bucket bounds, in seconds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bound, the observations at most that (not cumulative).
    counts: Vec<AtomicU64>,
    /// Observations above the last bound.
    over: AtomicU64,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            over: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        match self.bounds.iter().position(|bound| seconds <= *bound) {
            Some(bucket) => self.counts[bucket].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_micros
            .fetch_add((seconds * 1e6).round() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The cumulative counts per bound, the sum in seconds and the count.
    pub fn read(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.counts)
            .map(|(bound, count)| {
                cumulative += count.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        (
            buckets,
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.count.load(Ordering::Relaxed),
        )
    }
}

/// Builds a `/metrics` body.
#[derive(Default)]
pub struct MetricsText {
    body: String,
}

impl MetricsText {
    /// An empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a counter.
    pub fn counter(self, name: &str, help: &str, value: u64) -> Self {
        self.family(name, help, "counter", &[(String::new(), value as f64)])
    }

    /// Adds a counter with one sample per label set (`entity="orders"`).
    pub fn counters(self, name: &str, help: &str, samples: &[(String, f64)]) -> Self {
        self.family(name, help, "counter", samples)
    }

    /// Adds a gauge with one sample per label set (`partition="3"`).
    pub fn gauge(self, name: &str, help: &str, samples: &[(String, f64)]) -> Self {
        self.family(name, help, "gauge", samples)
    }

    fn family(mut self, name: &str, help: &str, kind: &str, samples: &[(String, f64)]) -> Self {
        let _ = writeln!(self.body, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            };
            let _ = writeln!(self.body, "{name}{labels} {value}");
        }
        self
    }

    /// Adds a histogram with one series per label set (`entity="orders"`).
    pub fn histogram(mut self, name: &str, help: &str, series: &[(String, &Histogram)]) -> Self {
        let _ = writeln!(self.body, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (labels, histogram) in series {
            let (buckets, sum, count) = histogram.read();
            let with = |extra: &str| match (labels.is_empty(), extra.is_empty()) {
                (true, true) => String::new(),
                (true, false) => format!("{{{extra}}}"),
                (false, true) => format!("{{{labels}}}"),
                (false, false) => format!("{{{labels},{extra}}}"),
            };
            for (bound, cumulative) in buckets {
                let _ = writeln!(
                    self.body,
                    "{name}_bucket{} {cumulative}",
                    with(&format!("le=\"{bound}\""))
                );
            }
            let _ = writeln!(self.body, "{name}_bucket{} {count}", with("le=\"+Inf\""));
            let _ = writeln!(self.body, "{name}_sum{} {sum}", with(""));
            let _ = writeln!(self.body, "{name}_count{} {count}", with(""));
        }
        self
    }

    /// The body, served as `text/plain; version=0.0.4`.
    pub fn finish(self) -> String {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::{Histogram, MetricsText};

    #[test]
    fn a_histogram_is_written_cumulative_with_its_sum_and_count() {
        static BOUNDS: [f64; 3] = [0.01, 0.1, 1.0];
        let histogram = Histogram::new(&BOUNDS);
        for seconds in [0.005, 0.05, 0.06, 2.0] {
            histogram.observe(seconds);
        }
        let text = MetricsText::new()
            .histogram(
                "lag_seconds",
                "Lag.",
                &[("entity=\"orders\"".into(), &histogram)],
            )
            .finish();
        for line in [
            "lag_seconds_bucket{entity=\"orders\",le=\"0.01\"} 1",
            "lag_seconds_bucket{entity=\"orders\",le=\"0.1\"} 3",
            "lag_seconds_bucket{entity=\"orders\",le=\"1\"} 3",
            "lag_seconds_bucket{entity=\"orders\",le=\"+Inf\"} 4",
            "lag_seconds_sum{entity=\"orders\"} 2.115",
            "lag_seconds_count{entity=\"orders\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
