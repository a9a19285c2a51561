//! The projector: folds `orders.events` into the state store and the read model.
//!
//! Layout:
//! - [`read_model`]: the PostgreSQL read model's schema (sqlx migrations).
#![deny(missing_docs)]

pub mod read_model;
