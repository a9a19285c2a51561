//! Liveness, readiness and metrics.
//!
//! Every metric of an entity type's processor and read model carries an
//! `entity` label; per-partition ones a `partition` label as well.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use event_store::store::PartitionStatus;
use serde_json::json;
use service_kit::Problem;
use service_kit::metrics::{Labels, Registry, Snapshot};

use super::AppState;
use crate::entity::Entity;

/// 200 while the process serves.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 once every entity's processor is in its group with its partitions
/// restored and none stopped; 503 with the reason otherwise.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, Problem> {
    let unavailable = |detail: String| Problem::new(StatusCode::SERVICE_UNAVAILABLE).detail(detail);
    let mut partitions = serde_json::Map::new();
    for entity in state.entities.iter() {
        let name = entity.name;
        if *entity.processor_done.borrow() {
            return Err(unavailable(format!("the {name} processor has stopped")));
        }
        if !entity.registry.joined() {
            return Err(unavailable(format!(
                "waiting for a partition assignment of {name}"
            )));
        }
        let owned = entity.registry.owned();
        if let Some((partition, reason)) = owned.iter().find_map(|h| match h.status() {
            PartitionStatus::Stopped { reason } => Some((h.partition, reason)),
            _ => None,
        }) {
            return Err(unavailable(format!(
                "{name} partition {partition} is stopped: {reason}"
            )));
        }
        partitions.insert(name.into(), owned.len().into());
    }
    Ok(Json(json!({ "status": "ready", "partitions": partitions })))
}

/// Samples of one value per entity.
type Samples = Vec<(Labels, f64)>;

fn per_entity(state: &AppState, value: impl Fn(&Entity) -> f64) -> Samples {
    state
        .entities
        .iter()
        .map(|e| (vec![("entity", e.name.to_owned())], value(e)))
        .collect()
}

fn per_partition(state: &AppState, values: impl Fn(&Entity) -> Vec<(i32, f64)>) -> Samples {
    state
        .entities
        .iter()
        .flat_map(|e| {
            values(e).into_iter().map(|(p, v)| {
                let labels = vec![("entity", e.name.to_owned()), ("partition", p.to_string())];
                (labels, v)
            })
        })
        .collect()
}

fn get(counter: &AtomicU64) -> f64 {
    counter.load(Ordering::Relaxed) as f64
}

/// Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let processor = |value: fn(&event_store::store::FoldMetrics) -> &AtomicU64| {
        per_entity(&state, |e| get(value(&e.registry.metrics)))
    };
    let owned = |value: fn(&event_store::store::PartitionHandle) -> i64| {
        per_partition(&state, |e| {
            e.registry
                .owned()
                .iter()
                .map(|h| (h.partition, value(h) as f64))
                .collect()
        })
    };
    let restores = |value: fn(&event_store::store::Restored) -> f64| {
        per_partition(&state, |e| {
            e.registry
                .restores()
                .iter()
                .map(|(p, r)| (*p, value(r)))
                .collect()
        })
    };
    let body = Snapshot::new()
        .counters(
            "projector_records_total",
            "Records of the events topic folded.",
            &processor(|m| &m.records),
        )
        .counters(
            "projector_commands_accepted_total",
            "Commands accepted.",
            &processor(|m| &m.accepted),
        )
        .counters(
            "projector_events_accepted_total",
            "Events accepted.",
            &processor(|m| &m.events),
        )
        .counters(
            "projector_commands_conflicted_total",
            "Commands rejected as conflicts.",
            &processor(|m| &m.conflicts),
        )
        .counters(
            "projector_commands_duplicate_total",
            "Commands recognised as duplicates.",
            &processor(|m| &m.duplicates),
        )
        .counters(
            "projector_dead_lettered_total",
            "Poison records sent to the dead-letter topic.",
            &processor(|m| &m.dead_lettered),
        )
        .counters(
            "projector_transactions_committed_total",
            "Transactions committed.",
            &processor(|m| &m.commits),
        )
        .counters(
            "projector_transactions_aborted_total",
            "Transactions aborted.",
            &processor(|m| &m.aborts),
        )
        .counters(
            "projector_standby_takeovers_total",
            "Partitions taken over from a standby copy kept here.",
            &per_entity(&state, |e| e.registry.standbys.takeovers() as f64),
        )
        .gauge(
            "projector_standby_lag",
            "Changelog records a standby copy is behind, per copy kept here.",
            &per_partition(&state, |e| {
                e.registry
                    .standbys
                    .all()
                    .iter()
                    .map(|r| (r.partition, r.lag() as f64))
                    .collect()
            }),
        )
        .gauge(
            "projector_restore_seconds",
            "How long the last takeover of a partition took to restore its store.",
            &restores(|r| r.seconds),
        )
        .gauge(
            "projector_restore_records",
            "Changelog records the last takeover of a partition applied.",
            &restores(|r| r.records as f64),
        )
        .gauge(
            "projector_committed_offset",
            "Next offset not yet committed, per owned partition.",
            &owned(|h| h.committed()),
        )
        .gauge(
            "projector_lag",
            "Records not yet folded, per owned partition.",
            &owned(|h| h.lag()),
        );
    let read_model = |value: fn(&read_model::PipelineMetrics) -> &AtomicU64| -> Samples {
        state
            .entities
            .iter()
            .filter_map(|e| {
                let metrics = e.read_model.as_ref()?;
                Some((vec![("entity", e.name.to_owned())], get(value(metrics))))
            })
            .collect()
    };
    let body = body
        .counters(
            "read_model_batches_total",
            "Batches written to PostgreSQL, each in one transaction with its offsets.",
            &read_model(|m| &m.batches),
        )
        .counters(
            "read_model_records_total",
            "Records of the events topic folded into the read model.",
            &read_model(|m| &m.records),
        )
        .counters(
            "read_model_events_total",
            "Events accepted into the read model.",
            &read_model(|m| &m.events),
        )
        .counters(
            "read_model_poison_skipped_total",
            "Records that are not valid envelopes, skipped (dead-lettered by the state store's pipeline).",
            &read_model(|m| &m.poison),
        )
        .counters(
            "read_model_errors_total",
            "Batches that failed (PostgreSQL or Kafka unavailable) and were retried.",
            &read_model(|m| &m.errors),
        )
        .gauge(
            "read_model_next_offset",
            "Next offset the read model folds, per partition.",
            &per_partition(&state, |e| {
                e.read_model.as_ref().map_or_else(Vec::new, |m| {
                    m.positions()
                        .iter()
                        .map(|(p, o)| (*p, *o as f64))
                        .collect()
                })
            }),
        )
        ;
    // The read models' histograms, live: registered for this answer only.
    let live = Registry::new();
    for metrics in state.entities.iter().filter_map(|e| e.read_model.as_ref()) {
        if let Err(error) = metrics.register(&live) {
            tracing::error!(%error, "read model histograms not served");
        }
    }
    body.respond(&live)
}
