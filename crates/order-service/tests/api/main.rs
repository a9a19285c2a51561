//! order-service over HTTP, against a real broker and a real projector
//! (both services in this process, each on port 0 with topics of its own).

mod bad_input;
mod concurrency;
mod consistency;
mod fuzz;
mod hot_entity;
mod idempotency;
mod inventory;
mod lifecycle;
mod lists;
mod openapi;
mod shutdown;
mod support;
