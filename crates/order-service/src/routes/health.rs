//! Liveness, readiness and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use service_kit::Problem;
use service_kit::metrics::MetricsText;

use super::AppState;

/// 200 while the process serves.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when Kafka and the projector answer; 503 saying which does not.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, Problem> {
    let (kafka, projector) = tokio::join!(
        state.kafka.reachable(Duration::from_secs(2)),
        state.executor.projector.ready()
    );
    match (kafka, projector) {
        (true, true) => Ok(Json(json!({ "status": "ready" }))),
        _ => Err(
            Problem::new(StatusCode::SERVICE_UNAVAILABLE).detail(format!(
                "kafka reachable: {kafka}; projector ready: {projector}"
            )),
        ),
    }
}

/// Prometheus text.
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
        .counter(
            "order_service_append_transactions_total",
            "Kafka transactions of the appender (shared by concurrent commands).",
            state.executor.appender.transactions(),
        )
        .finish();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
