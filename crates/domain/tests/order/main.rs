//! The order domain: rules, wire format, and the laws of the fold and the
//! validation rule.

mod decide;
mod fixtures;
mod properties;
mod validation;
mod wire;
