//! The notifier's HTTP port: health, metrics, and what operators do with the
//! effects (list them, send them again, enable an endpoint again). Errors are
//! `application/problem+json`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::Problem;
use service_kit::metrics::{Labels, Snapshot};

use crate::Metrics;
use crate::ingest::ChangesConsumer;
use crate::ledger::{Ledger, SMTP};
use crate::operate::{self, Resent};

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) consumer: Arc<ChangesConsumer>,
    /// The changes topics consumed.
    pub(crate) topics: Vec<String>,
    pub(crate) ledger: Ledger,
    /// The configured webhook endpoints.
    pub(crate) webhook_urls: Vec<String>,
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/metrics", get(metrics))
        .route("/effects", get(list))
        .route("/effects/{effect_id}/resend", post(resend))
        .route("/destinations/resend", post(resend_destination))
        .route("/endpoints", get(endpoints))
        .route("/endpoints/enable", post(enable))
        .fallback(service_kit::problem::not_found)
        .method_not_allowed_fallback(service_kit::problem::method_not_allowed)
        .with_state(state)
}

fn bad_request(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST).detail(detail.into())
}

fn unavailable(error: sqlx::Error) -> Problem {
    tracing::warn!(%error, "effects table unavailable");
    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .detail("the effects table is unavailable; retry")
        .retry_after(1)
}

/// `GET /effects` parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// `pending`, `attempting`, `sent` or `failed` (default `failed`, or
    /// every state with `entity_id`).
    state: Option<String>,
    /// Only the effects of this entity's events (an order's id, a SKU's).
    entity_id: Option<uuid::Uuid>,
    /// `smtp` or an endpoint's URL.
    destination: Option<String>,
    /// 1 to 1000 (default 100).
    limit: Option<u32>,
}

const STATES: [&str; 4] = ["pending", "attempting", "sent", "failed"];

/// The most recent effects in a state (default: the failed ones).
async fn list(
    State(state): State<HttpState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(params) = params.map_err(|r| bad_request(r.body_text()))?;
    let wanted = match (params.state.as_deref(), params.entity_id) {
        (Some(state), _) if !STATES.contains(&state) => {
            return Err(bad_request(format!(
                "state must be one of {}, got `{state}`",
                STATES.join(", ")
            )));
        }
        (Some(state), _) => Some(state),
        (None, Some(_)) => None,
        (None, None) => Some("failed"),
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_request(format!("limit must be 1 to 1000, got {limit}")));
    }
    let effects = operate::list(
        state.ledger.pool(),
        wanted,
        params.destination.as_deref(),
        params.entity_id,
        limit,
    )
    .await
    .map_err(unavailable)?;
    Ok(Json(json!({ "effects": effects })))
}

/// `POST /effects/{id}/resend` parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendParams {
    /// Only at this destination (default: every one it has).
    destination: Option<String>,
}

/// Sends a sent or failed effect again (its attempts start over).
async fn resend(
    State(state): State<HttpState>,
    Path(effect_id): Path<String>,
    params: Result<Query<ResendParams>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(params) = params.map_err(|r| bad_request(r.body_text()))?;
    let resent = operate::resend(
        state.ledger.pool(),
        &effect_id,
        params.destination.as_deref(),
    )
    .await
    .map_err(unavailable)?;
    match resent {
        Resent::Pending(destinations) => Ok(Json(
            json!({ "effect_id": effect_id, "pending": destinations }),
        )),
        Resent::InProgress => Err(Problem::new(StatusCode::CONFLICT).detail(format!(
            "effect {effect_id} is still pending or being attempted"
        ))),
        Resent::Unknown => Err(Problem::new(StatusCode::NOT_FOUND)
            .detail(format!("no effect {effect_id} (at that destination)"))),
    }
}

/// A destination, in a body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationBody {
    /// `smtp` or an endpoint's URL.
    destination: String,
}

/// Sends every failed effect of a destination again.
async fn resend_destination(
    State(state): State<HttpState>,
    body: Result<Json<DestinationBody>, JsonRejection>,
) -> Result<Json<Value>, Problem> {
    let Json(body) = body.map_err(|r| Problem::new(r.status()).detail(r.body_text()))?;
    if body.destination != SMTP && !state.webhook_urls.contains(&body.destination) {
        return Err(Problem::new(StatusCode::NOT_FOUND).detail(format!(
            "no destination `{}`: `{SMTP}` or a configured endpoint ({})",
            body.destination,
            state.webhook_urls.join(", ")
        )));
    }
    let resent = operate::resend_failed(state.ledger.pool(), &body.destination, None)
        .await
        .map_err(unavailable)?;
    Ok(Json(
        json!({ "destination": body.destination, "pending": resent }),
    ))
}

/// The configured endpoints: disabled or not, and their effects by state.
async fn endpoints(State(state): State<HttpState>) -> Result<Json<Value>, Problem> {
    let views = operate::endpoints(state.ledger.pool(), &state.webhook_urls)
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({ "endpoints": views })))
}

/// `POST /endpoints/enable`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnableBody {
    /// The endpoint.
    url: String,
    /// Whether what failed while it was disabled is sent now.
    resend_missed: bool,
}

/// Enables an endpoint that answered 410 Gone.
async fn enable(
    State(state): State<HttpState>,
    body: Result<Json<EnableBody>, JsonRejection>,
) -> Result<Json<Value>, Problem> {
    let Json(body) = body.map_err(|r| Problem::new(r.status()).detail(r.body_text()))?;
    match operate::enable(state.ledger.pool(), &body.url, body.resend_missed)
        .await
        .map_err(unavailable)?
    {
        Some(resent) => Ok(Json(json!({ "url": body.url, "pending": resent }))),
        None => {
            Err(Problem::new(StatusCode::CONFLICT).detail(format!("{} is not disabled", body.url)))
        }
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let lag = {
        let (consumer, topics) = (state.consumer.clone(), state.topics.clone());
        tokio::task::spawn_blocking(move || {
            topics
                .iter()
                .flat_map(|topic| lag(&consumer, topic))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default()
    };
    let pending: Vec<(String, i64)> = sqlx::query_as(
        "SELECT destination, count(*) FROM effects WHERE state IN ('pending', 'attempting') GROUP BY 1",
    )
    .fetch_all(state.ledger.pool())
    .await
    .unwrap_or_default();
    let per_destination = pending
        .iter()
        .map(|(d, n)| (vec![("destination", d.clone())], *n as f64))
        .collect::<Vec<_>>();
    Snapshot::new()
        .gauge(
            "notifier_effects_pending",
            "Effects not settled yet, per destination.",
            &per_destination,
        )
        .gauge(
            "notifier_lag",
            "Records of the changes topics not yet recorded, per topic and partition.",
            &lag,
        )
        .respond(&state.metrics.registry)
}

/// Per assigned partition: end offset minus committed offset.
fn lag(consumer: &ChangesConsumer, topic: &str) -> Vec<(Labels, f64)> {
    event_store::positions::consumer_lag(consumer, topic, Duration::from_secs(2))
        .into_iter()
        .map(|(partition, lag)| {
            let labels = vec![
                ("topic", topic.to_owned()),
                ("partition", partition.to_string()),
            ];
            (labels, lag as f64)
        })
        .collect()
}
