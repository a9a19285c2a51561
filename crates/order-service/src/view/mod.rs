//! Request bodies (parsed into domain values) and views, per entity type.

mod order;
mod stock;

pub use order::*;
pub use stock::*;

use axum::http::StatusCode;
use domain::order::ValueError;
use serde::Deserialize;
use service_kit::Problem;

/// A whole number of JSON: `36` or `36.0` (JSON Schema's integers include
/// both), never `36.5` or a negative one.
pub fn integral<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(n) = number.as_u64() {
        return Ok(n);
    }
    match number.as_f64() {
        // Exact: every integer up to 2^53 is a float, and no limit here is higher.
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 => Ok(f as u64),
        _ => Err(serde::de::Error::custom(format!(
            "invalid value: {number}, expected a whole number of at least 0"
        ))),
    }
}

/// A field that broke its rule: 422, naming the field.
pub fn invalid(error: ValueError) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
        .detail(error.to_string())
        .with("field", error.field)
}
