//! The order domain: rules, wire format, and the laws of the fold and the
//! validation rule.

mod decide;
mod fixtures;
#[path = "../common/golden.rs"]
mod golden;
mod properties;
mod validation;
mod wire;
