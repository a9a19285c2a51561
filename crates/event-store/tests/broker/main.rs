//! event-store against a live Kafka broker (`scripts/infra up` starts one).
//!
//! Each test works on topics and transactional ids of its own, so tests run in
//! parallel against the same broker.

mod appender;
mod positions;
mod support;
mod topics;
mod transactions;
