//! The Prometheus text exposition format.

use std::fmt::Write;

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

    /// The body, served as `text/plain; version=0.0.4`.
    pub fn finish(self) -> String {
        self.body
    }
}
