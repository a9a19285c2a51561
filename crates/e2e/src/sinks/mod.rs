//! Receivers for what the services send out, on localhost, that record what
//! they get: an SMTP server and a webhook endpoint that misbehaves on purpose
//! (the notifier's effects), and an OTLP endpoint (exported traces). Tests
//! use them as real servers; the demo runs the first two so effects can be
//! seen.

pub mod otlp;
pub mod smtp;
pub mod webhook;

/// The environment variables the `sinks` binary reads: the SMTP, webhook and
/// OTLP addresses, and the secret webhooks are checked with.
pub const ENV: [&str; 4] = [
    "SINK_SMTP_ADDR",
    "SINK_WEBHOOK_ADDR",
    "SINK_OTLP_ADDR",
    "WEBHOOK_SECRET",
];
