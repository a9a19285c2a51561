//! Logs to stderr; `RUST_LOG` filters (default `info`), `LOG_FORMAT` picks
//! `text` (the default) or `json`: one object per line, with the fields of
//! the current span and of each span it is in, so a line inside a command
//! carries that command's `trace_id` and `span_id`.

use tracing_subscriber::EnvFilter;

/// The variable that picks the format.
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// `LOG_FORMAT` names no format.
#[derive(Debug, thiserror::Error)]
#[error("LOG_FORMAT must be `text` or `json`, not `{0}`")]
pub struct UnknownLogFormat(String);

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
    pub fn parse(value: Option<&str>) -> Result<Self, UnknownLogFormat> {
        match value.map(str::trim) {
            None | Some("" | "text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(UnknownLogFormat(other.to_owned())),
        }
    }
}

/// Installs the global subscriber; a second call is a no-op (tests start
/// several services in one process).
pub fn init() -> Result<(), UnknownLogFormat> {
    let format = LogFormat::parse(std::env::var(LOG_FORMAT).ok().as_deref())?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    Ok(())
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
