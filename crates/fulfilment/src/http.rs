//! The workflow's HTTP port: health and metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use service_kit::metrics::{Labels, Snapshot};

use crate::Metrics;
use crate::consumer::ChangesConsumer;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) consumer: Arc<ChangesConsumer>,
    /// The changes topic acted on.
    pub(crate) topic: String,
}

/// `/healthz` and `/metrics`; anything else is a problem+json 404 or 405.
pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/metrics", get(metrics))
        .fallback(service_kit::problem::not_found)
        .method_not_allowed_fallback(service_kit::problem::method_not_allowed)
        .with_state(state)
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let lag = {
        let (consumer, topic) = (state.consumer.clone(), state.topic.clone());
        tokio::task::spawn_blocking(move || {
            event_store::positions::consumer_lag(&*consumer, &topic, Duration::from_secs(2))
                .into_iter()
                .map(|(partition, lag)| {
                    let labels: Labels = vec![
                        ("topic", topic.clone()),
                        ("partition", partition.to_string()),
                    ];
                    (labels, lag as f64)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default()
    };
    Snapshot::new()
        .gauge(
            "fulfilment_lag",
            "Records of the orders' changes topic not yet acted on, per partition.",
            &lag,
        )
        .respond(&state.metrics.registry)
}
