//! The whole system against a real Kafka broker and a real PostgreSQL, and
//! [`sinks`]: local receivers of the notifier's e-mails and webhooks.

pub mod sinks;
