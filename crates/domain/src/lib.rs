//! The domain: what an order and a SKU's stock are, and which changes to
//! them are legal. Pure: no I/O, no clock, no randomness; ids and times come
//! in from the caller.
//!
//! Layout:
//! - [`aggregate`]: the generic kernel: the [`aggregate::Aggregate`] trait (a
//!   Decider), the event envelope and its wire format, the command batch that
//!   is one Kafka record, and the shared validation rule ([`aggregate::Snapshot`]).
//! - [`order`]: the order aggregate: values, commands, events (with schema
//!   versions and upcasting), state, `decide` and `evolve`. Its lifecycle
//!   diagram is in the module's docs.
//! - [`inventory`]: the stock of one SKU: restocked, reserved for orders,
//!   released or committed; `received = available + reserved + shipped`.
//!
//! Each entity type is a module like these, implementing the same trait.
#![deny(missing_docs)]

pub mod aggregate;
pub mod inventory;
pub mod order;
