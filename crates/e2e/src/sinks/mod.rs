//! Receivers for the notifier's effects, on localhost, that record what they
//! get: an SMTP server and a webhook endpoint that misbehaves on purpose.
//! Tests use them as real servers; the demo runs them so effects can be seen.

pub mod smtp;
pub mod webhook;

/// The environment variables the `sinks` binary reads: the SMTP address, the
/// webhook address, and the secret webhooks are checked with.
pub const ENV: [&str; 3] = ["SINK_SMTP_ADDR", "SINK_WEBHOOK_ADDR", "WEBHOOK_SECRET"];
