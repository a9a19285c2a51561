//! Request bodies (parsed into domain values) and views, per entity type.

mod order;
mod stock;

pub use order::*;
pub use stock::*;

use axum::http::StatusCode;
use domain::order::ValueError;
use service_kit::Problem;

/// A field that broke its rule: 422, naming the field.
pub fn invalid(error: ValueError) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
        .detail(error.to_string())
        .with("field", error.field)
}
