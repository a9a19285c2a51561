//! Receivers for the notifier's effects, on localhost, that record what they
//! get: an SMTP server and a webhook endpoint that misbehaves on purpose.
//! Tests use them as real servers; the demo runs them so effects can be seen.

pub mod smtp;
pub mod webhook;
