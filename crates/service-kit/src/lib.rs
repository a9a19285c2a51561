//! What every service binary shares.
//!
//! Layout:
//! - [`telemetry`]: tracing to stderr, filtered by `RUST_LOG`.
//! - [`shutdown`]: a future that completes on SIGTERM or Ctrl-C.
//! - [`problem`]: RFC 9457 `application/problem+json` error responses.
//! - [`topics`]: the Kafka and topic flags every service shares.
//! - [`kafka`]: the cluster's connection and security settings, checked at start.
//! - [`retry`]: retrying a start-up step until it succeeds or shutdown.
//! - [`metrics`]: the Prometheus text format, written by hand (a few lines
//!   instead of a metrics framework).
//! - `allocator`: every binary that links this crate allocates with jemalloc.
#![deny(missing_docs)]

mod allocator;
pub mod kafka;
pub mod metrics;
pub mod problem;
pub mod retry;
pub mod shutdown;
pub mod telemetry;
pub mod topics;

pub use problem::Problem;
