//! Liveness, readiness and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use service_kit::Problem;
use service_kit::metrics::MetricsText;
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
    responses((status = 200, description = "Counters in Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let body = MetricsText::new()
        .counter(
            "order_service_commands_accepted_total",
            "Commands that took effect.",
            get(&m.accepted),
        )
        .counter(
            "order_service_commands_refused_total",
            "Commands refused with a 4xx.",
            get(&m.refused),
        )
        .counter(
            "order_service_commands_failed_total",
            "Commands that failed with a 5xx.",
            get(&m.failed),
        )
        .counter(
            "order_service_idempotent_replays_total",
            "Answers replayed for an Idempotency-Key.",
            get(&m.replayed),
        )
        .gauge(
            "order_service_http_requests_in_flight",
            "HTTP requests being answered now.",
            &[(String::new(), get(&m.in_flight) as f64)],
        )
        .counter(
            "order_service_append_transactions_total",
            "Kafka transactions of the appender (shared by concurrent commands).",
            state.orders.appender.transactions(),
        )
        .finish();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
