//! The projector against a live Kafka broker and PostgreSQL (`scripts/infra up`),
//! run as a child process where crashes matter.

mod exactly_once;
mod poison;
mod queries;
mod read_model;
mod restore;
mod routing;
mod support;
