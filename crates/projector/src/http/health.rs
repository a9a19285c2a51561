//! Liveness, readiness and metrics.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use event_store::store::PartitionStatus;
use serde_json::json;
use service_kit::Problem;
use service_kit::metrics::MetricsText;

use super::AppState;

/// 200 while the process serves.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 once the processor is in its group with its partitions restored and
/// none stopped; 503 with the reason otherwise.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, Problem> {
    let unavailable = |detail: String| Problem::new(StatusCode::SERVICE_UNAVAILABLE).detail(detail);
    if *state.processor_done.borrow() {
        return Err(unavailable("the processor has stopped".into()));
    }
    if !state.registry.joined() {
        return Err(unavailable("waiting for a partition assignment".into()));
    }
    let owned = state.registry.owned();
    if let Some((partition, reason)) = owned.iter().find_map(|h| match h.status() {
        PartitionStatus::Stopped { reason } => Some((h.partition, reason)),
        _ => None,
    }) {
        return Err(unavailable(format!(
            "partition {partition} is stopped: {reason}"
        )));
    }
    Ok(Json(
        json!({ "status": "ready", "partitions": owned.len() }),
    ))
}

/// Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.registry.metrics;
    let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    let owned = state.registry.owned();
    let per_partition =
        |value: &dyn Fn(&event_store::store::PartitionHandle) -> i64| -> Vec<(String, f64)> {
            owned
                .iter()
                .map(|h| (format!("partition=\"{}\"", h.partition), value(h) as f64))
                .collect()
        };
    let restored = state.registry.restores();
    let restores = |value: &dyn Fn(&event_store::store::Restored) -> f64| -> Vec<(String, f64)> {
        restored
            .iter()
            .map(|(p, r)| (format!("partition=\"{p}\""), value(r)))
            .collect()
    };
    let body = MetricsText::new()
        .counter(
            "projector_records_total",
            "Records of the events topic folded.",
            get(&m.records),
        )
        .counter(
            "projector_commands_accepted_total",
            "Commands accepted.",
            get(&m.accepted),
        )
        .counter(
            "projector_events_accepted_total",
            "Events accepted.",
            get(&m.events),
        )
        .counter(
            "projector_commands_conflicted_total",
            "Commands rejected as conflicts.",
            get(&m.conflicts),
        )
        .counter(
            "projector_commands_duplicate_total",
            "Commands recognised as duplicates.",
            get(&m.duplicates),
        )
        .counter(
            "projector_dead_lettered_total",
            "Poison records sent to the dead-letter topic.",
            get(&m.dead_lettered),
        )
        .counter(
            "projector_transactions_committed_total",
            "Transactions committed.",
            get(&m.commits),
        )
        .counter(
            "projector_transactions_aborted_total",
            "Transactions aborted.",
            get(&m.aborts),
        )
        .counter(
            "projector_standby_takeovers_total",
            "Partitions taken over from a standby copy kept here.",
            state.registry.standbys.takeovers(),
        )
        .gauge(
            "projector_standby_lag",
            "Changelog records a standby copy is behind, per copy kept here.",
            &state
                .registry
                .standbys
                .all()
                .iter()
                .map(|r| (format!("partition=\"{}\"", r.partition), r.lag() as f64))
                .collect::<Vec<_>>(),
        )
        .gauge(
            "projector_restore_seconds",
            "How long the last takeover of a partition took to restore its store.",
            &restores(&|r| r.seconds),
        )
        .gauge(
            "projector_restore_records",
            "Changelog records the last takeover of a partition applied.",
            &restores(&|r| r.records as f64),
        )
        .gauge(
            "projector_committed_offset",
            "Next offset not yet committed, per owned partition.",
            &per_partition(&|h| h.committed()),
        )
        .gauge(
            "projector_lag",
            "Records not yet folded, per owned partition.",
            &per_partition(&|h| (h.high_watermark() - h.committed()).max(0)),
        );
    let body = match &state.read_model {
        Some(rm) => body
            .counter(
                "read_model_batches_total",
                "Batches written to PostgreSQL, each in one transaction with its offsets.",
                get(&rm.batches),
            )
            .counter(
                "read_model_records_total",
                "Records of the events topic folded into the read model.",
                get(&rm.records),
            )
            .counter(
                "read_model_events_total",
                "Events accepted into the read model.",
                get(&rm.events),
            )
            .counter(
                "read_model_poison_skipped_total",
                "Records that are not valid envelopes, skipped (dead-lettered by the state store's pipeline).",
                get(&rm.poison),
            )
            .counter(
                "read_model_errors_total",
                "Batches that failed (PostgreSQL or Kafka unavailable) and were retried.",
                get(&rm.errors),
            )
            .gauge(
                "read_model_next_offset",
                "Next offset the read model folds, per partition.",
                &rm.positions()
                    .iter()
                    .map(|(p, o)| (format!("partition=\"{p}\""), *o as f64))
                    .collect::<Vec<_>>(),
            ),
        None => body,
    }
    .finish();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
