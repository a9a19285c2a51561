//! The notifier: the side effects of accepted events of every entity type
//! (e-mails and signed webhooks), each performed once as far as the effects
//! table can tell, at least once (or at most once, per kind) as far as the
//! outside world can.
//!
//! - [`effects`]: pure: which e-mails and webhooks a change causes, each
//!   with a stable id (`<kind>:<event id>`); one module per entity type.
//! - [`signature`]: Standard Webhooks signing, and the verifier receivers use.
//! - [`delivery`]: one attempt (SMTP with lettre, HTTP with reqwest) and what
//!   its answer means; backoff with jitter.
//! - [`ledger`]: the effects table in PostgreSQL (schema `notifier`).
//! - [`worker`]: the consumer of every `.changes` topic: entities
//!   concurrently, each entity's effects in order, offsets committed only
//!   past settled records.
//! - [`app`], [`config`]: start-up, flags, health and metrics on port 8082.
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod delivery;
pub mod effects;
pub mod ledger;
pub mod signature;
pub mod worker;

pub use app::Application;
pub use config::Config;
