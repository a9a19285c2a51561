//! Logs to stderr; `RUST_LOG` filters (default `info`), `LOG_FORMAT` picks
//! `text` (the default) or `json`: one object per line, with the fields of
//! the current span and of each span it is in, so a line inside a command
//! carries that command's `trace_id` and `span_id`.
//!
//! Traces go out over OTLP/HTTP (protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, named by
//! `OTEL_SERVICE_NAME` or the binary's name; the exporter's other standard
//! `OTEL_*` variables apply. Nothing is exported otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;

/// The variable that picks the format.
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// The OpenTelemetry variables whose presence turns trace export on.
const ENDPOINTS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// Every variable this module reads, for checks of deployment files (the
/// exporter reads the other standard `OTEL_*` ones too).
pub const ENV: [&str; 5] = [
    "RUST_LOG",
    LOG_FORMAT,
    ENDPOINTS[0],
    ENDPOINTS[1],
    "OTEL_SERVICE_NAME",
];

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `LOG_FORMAT` names no format.
    #[error("LOG_FORMAT must be `text` or `json`, not `{0}`")]
    UnknownLogFormat(String),
    /// The OTLP exporter refused its settings.
    #[error("the OTLP trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT): {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// For people.
    Text,
    /// For log collectors.
    Json,
}

impl LogFormat {
    /// The format `value` of `LOG_FORMAT` names (unset: text).
    pub fn parse(value: Option<&str>) -> Result<Self, TelemetryError> {
        match value.map(str::trim) {
            None | Some("" | "text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(TelemetryError::UnknownLogFormat(other.to_owned())),
        }
    }
}

/// Flushes the exported spans when dropped (at the end of `main`).
#[must_use = "spans are flushed when this is dropped"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::warn!(%error, "not every span was exported");
        }
    }
}

/// Installs the global subscriber (a second call leaves the first in place:
/// tests start several services in one process) and, when asked for, the
/// trace exporter of the service called `service`.
pub fn init(service: &str) -> Result<Telemetry, TelemetryError> {
    let format = LogFormat::parse(std::env::var(LOG_FORMAT).ok().as_deref())?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file or collector gets plain text.
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    let asked = ENDPOINTS
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if !asked {
        return Ok(Telemetry { traces: None });
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()?;
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by the builder
    // and win over the binary's name.
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    event_store::trace_context::hop::enable_export();
    tracing::info!("exporting traces over OTLP");
    Ok(Telemetry {
        traces: Some(provider),
    })
}

#[cfg(test)]
mod tests {
    use super::LogFormat;

    #[test]
    fn log_format_is_text_unless_json_is_asked_and_anything_else_is_refused() {
        assert_eq!(LogFormat::parse(None).ok(), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("text")).ok(), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("json")).ok(), Some(LogFormat::Json));
        let refused = LogFormat::parse(Some("yaml")).expect_err("no yaml");
        assert!(refused.to_string().contains("LOG_FORMAT"), "{refused}");
    }
}
