//! Reading a service's `/metrics` answer with a Prometheus text-format parser.

use anyhow::{Context, bail};
use prometheus_parse::{LineInfo, Scrape, Value};

/// A `/metrics` answer, parsed.
pub struct Metrics {
    scrape: Scrape,
}

impl Metrics {
    /// Parses `text`, refusing any line the format does not allow and any
    /// histogram whose buckets are not cumulative up to its `_count`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        for line in text.lines() {
            if LineInfo::parse(line) == LineInfo::Ignored {
                bail!("not a line of the Prometheus text format: `{line}`");
            }
        }
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .context("parsing the Prometheus text")?;
        let metrics = Self { scrape };
        for sample in &metrics.scrape.samples {
            let Value::Histogram(buckets) = &sample.value else {
                continue;
            };
            let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
            if counts.windows(2).any(|w| w[0] > w[1]) {
                bail!(
                    "{} {}: buckets not cumulative",
                    sample.metric,
                    sample.labels
                );
            }
            let count = metrics.value(&format!("{}_count", sample.metric), &sample.labels);
            let infinite = buckets.iter().find(|b| b.less_than.is_infinite());
            if infinite.map(|b| b.count) != count {
                bail!(
                    "{} {}: the +Inf bucket is not the count",
                    sample.metric,
                    sample.labels
                );
            }
        }
        Ok(metrics)
    }

    /// The sum of every sample of counter, gauge or untyped `name` (all
    /// label sets), or 0 when there is none.
    pub fn sum(&self, name: &str) -> f64 {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter_map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
                _ => None,
            })
            .sum()
    }

    /// The value of counter, gauge or untyped `name` in the series with all
    /// of `labels` (the first that matches).
    pub fn sample(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.scrape.samples.iter().find_map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)
                if s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)) =>
            {
                Some(v)
            }
            _ => None,
        })
    }

    /// Observations of histogram `name` in the series with all of `labels`
    /// (summed over the series that match); `None` when there is no such
    /// histogram.
    pub fn observations(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching = self.scrape.samples.iter().filter(|s| {
            s.metric == name
                && matches!(s.value, Value::Histogram(_))
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        });
        matching.fold(None, |total, sample| {
            let count = self.value(&format!("{name}_count"), &sample.labels)?;
            Some(total.unwrap_or(0.0) + count)
        })
    }

    /// The value of the sample `name` with exactly these labels.
    fn value(&self, name: &str, labels: &prometheus_parse::Labels) -> Option<f64> {
        self.scrape.samples.iter().find_map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)
                if s.metric == name && &s.labels == labels =>
            {
                Some(v)
            }
            _ => None,
        })
    }
}

/// Reads and parses the `/metrics` of the service at `url`.
pub async fn scrape(http: &reqwest::Client, url: &str) -> anyhow::Result<Metrics> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Metrics::parse(&text).with_context(|| format!("{url}/metrics:\n{text}"))
}

/// The sum of every sample of metric `name` (all label sets), or 0 when
/// there is none or the text does not parse.
pub fn sum(text: &str, name: &str) -> f64 {
    Metrics::parse(text).map_or(0.0, |metrics| metrics.sum(name))
}

#[cfg(test)]
mod tests {
    use super::{Metrics, sum};

    #[test]
    fn samples_of_one_name_are_summed_and_longer_names_ignored() {
        let text = "# TYPE a_total counter\na_total{entity=\"orders\"} 2\na_total{entity=\"inventory\"} 3\na_total_other 100\nb 7\n";
        assert_eq!(sum(text, "a_total"), 5.0);
        assert_eq!(sum(text, "b"), 7.0);
        assert_eq!(sum(text, "c"), 0.0);
    }

    const HISTOGRAM: &str = "# HELP d_seconds Latency.\n# TYPE d_seconds histogram\n\
        d_seconds_bucket{kind=\"a\",le=\"0.1\"} 1\nd_seconds_bucket{kind=\"a\",le=\"+Inf\"} 3\n\
        d_seconds_sum{kind=\"a\"} 2.5\nd_seconds_count{kind=\"a\"} 3\n\
        d_seconds_bucket{kind=\"b\",le=\"0.1\"} 0\nd_seconds_bucket{kind=\"b\",le=\"+Inf\"} 2\n\
        d_seconds_sum{kind=\"b\"} 1\nd_seconds_count{kind=\"b\"} 2\n";

    #[test]
    fn histogram_observations_are_read_per_label_set() {
        let metrics = Metrics::parse(HISTOGRAM).expect("valid text");
        assert_eq!(
            metrics.observations("d_seconds", &[("kind", "a")]),
            Some(3.0)
        );
        assert_eq!(metrics.observations("d_seconds", &[]), Some(5.0));
        assert_eq!(metrics.observations("d_seconds", &[("kind", "c")]), None);
        assert_eq!(metrics.observations("e_seconds", &[]), None);
    }

    #[test]
    fn broken_text_and_inconsistent_histograms_are_refused() {
        assert!(Metrics::parse("a_total{entity=\"x\" 2\n").is_err());
        let not_cumulative = HISTOGRAM.replace("le=\"0.1\"} 1", "le=\"0.1\"} 4");
        assert!(Metrics::parse(&not_cumulative).is_err());
        let wrong_count = HISTOGRAM.replace(
            "d_seconds_count{kind=\"b\"} 2",
            "d_seconds_count{kind=\"b\"} 9",
        );
        assert!(Metrics::parse(&wrong_count).is_err());
    }
}
