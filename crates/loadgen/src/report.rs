//! Latency histograms and the summary.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// What the workers measured.
pub struct Report {
    latency: Histogram<u64>,
    /// Answers by HTTP status (or error kind).
    outcomes: BTreeMap<String, u64>,
    /// Commands (or records) that succeeded.
    pub ok: u64,
}

impl Default for Report {
    fn default() -> Self {
        Self {
            // Microseconds, 1 µs to 60 s, 3 significant digits.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant, valid bounds"),
            outcomes: BTreeMap::new(),
            ok: 0,
        }
    }
}

impl Report {
    /// Records one request.
    /// Counts an outcome that was no command of its own (an order the
    /// workflow cancelled), without a latency.
    pub fn note(&mut self, outcome: &str) {
        *self.outcomes.entry(outcome.to_owned()).or_default() += 1;
    }

    pub fn record(&mut self, latency: Duration, outcome: &str, ok: bool) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self.latency.record(micros.min(self.latency.high()));
        *self.outcomes.entry(outcome.to_owned()).or_default() += 1;
        if ok {
            self.ok += 1;
        }
    }

    /// One line for the progress bar.
    pub fn progress(&self, elapsed: Duration) -> String {
        format!(
            "{} ok, {:.0}/s, p99 {:.1} ms",
            self.ok,
            self.ok as f64 / elapsed.as_secs_f64().max(1e-9),
            self.latency.value_at_quantile(0.99) as f64 / 1000.0
        )
    }

    /// The final summary.
    pub fn summary(&self, mode: &str, elapsed: Duration, rate: u64, concurrency: u64) -> String {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let target = if rate == 0 {
            "flat out".to_owned()
        } else {
            format!("target {rate}/s")
        };
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!(
            "mode {mode}, {target}, concurrency {concurrency}, {:.1} s\n\
             ok: {} ({:.0}/s)\n\
             latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n\
             outcomes: {}",
            elapsed.as_secs_f64(),
            self.ok,
            self.ok as f64 / elapsed.as_secs_f64().max(1e-9),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            self.latency.max() as f64 / 1000.0,
            outcomes.join(", ")
        )
    }
}
