//! order-service: the public HTTP API of orders and stock. It validates requests,
//! decides with the domain, appends the command's events in a shared Kafka
//! transaction, and answers once the projector has judged them
//! (read-your-writes).
//!
//! Layout:
//! - [`config`]: flags with environment fallbacks.
//! - [`app`]: start-up (topics, appender, HTTP) and graceful shutdown.
//! - [`projector`]: the client of the projector's state API.
//! - [`execute`]: the write path, generic over the aggregate type: read,
//!   check `If-Match`, decide, append, wait for the verdict, re-execute on
//!   conflict.
//! - [`lanes`]: commands on one entity take turns within this instance.
//! - [`snapshots`]: the snapshots this instance wrote last, to decide on.
//! - [`idempotency`]: `Idempotency-Key` handling.
//! - [`consistency`]: the `Consistency-Token` of writes, and reads that wait
//!   for it.
//! - [`view`]: request bodies and views, per entity.
//! - [`routes`]: one module per resource; [`routes::Command`] and its
//!   runner are what every entity's command routes share.
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod consistency;
pub mod execute;
pub mod idempotency;
pub mod lanes;
pub mod projector;
pub mod routes;
pub mod snapshots;
pub mod view;

pub use app::Application;
pub use config::Config;
