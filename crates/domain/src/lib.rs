//! The domain: what an order is and which changes to it are legal. Pure: no
//! I/O, no clock, no randomness; ids and times come in from the caller.
//!
//! Layout:
//! - [`aggregate`]: the generic kernel: the [`aggregate::Aggregate`] trait (a
//!   Decider), the event envelope and its wire format, the command batch that
//!   is one Kafka record, and the shared validation rule ([`aggregate::Snapshot`]).
//! - [`order`]: the order aggregate: values, commands, events (with schema
//!   versions and upcasting), state, `decide` and `evolve`. Its lifecycle
//!   diagram is in the module's docs.
//!
//! A second entity type is a sibling of [`order`] implementing the same trait.
#![deny(missing_docs)]

pub mod aggregate;
pub mod order;
