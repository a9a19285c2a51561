//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use service_kit::Problem;
use service_kit::metrics::Snapshot;
use utoipa::ToSchema;

use super::AppState;

/// The body of a healthy answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    status: &'static str,
}

/// 200 while the process serves.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process serves", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// 200 when Kafka and the projector answer; 503 saying which does not.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Kafka and the projector answer", body = Health),
        (status = 503, description = "Kafka or the projector does not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    let (kafka, projector) = tokio::join!(
        state.kafka.reachable(Duration::from_secs(2)),
        state.orders.projector.ready()
    );
    match (kafka, projector) {
        (true, true) => Ok(Json(Health { status: "ready" })),
        _ => Err(
            Problem::new(StatusCode::SERVICE_UNAVAILABLE).detail(format!(
                "kafka reachable: {kafka}; projector ready: {projector}"
            )),
        ),
    }
}

/// Prometheus text.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Metrics in the Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    Snapshot::new().respond(&state.metrics.registry)
}
