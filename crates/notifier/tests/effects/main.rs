//! Guarantee 5 against real Kafka, PostgreSQL, an SMTP server and webhook
//! endpoints that fail, throttle, hang, go away and come back, while the
//! notifier is `kill -9`'d and restarted.

mod endpoints;
mod inventory;
mod kill;
mod lanes;
mod support;
