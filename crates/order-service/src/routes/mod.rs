//! The public API, one module per resource, and what the handlers share:
//! body parsing and the order response here, commands in `command`, reads
//! of one entity in `read`.

mod command;
mod health;
mod inventory;
mod items;
mod lists;
mod openapi;
mod orders;
pub(crate) mod read;
mod trace;
mod transitions;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use domain::inventory::InventoryAggregate;
use domain::order::OrderAggregate;
use event_store::metrics::AppendMetrics;
use event_store::probe::KafkaProbe;
use serde::de::DeserializeOwned;
use service_kit::Problem;
use service_kit::metrics::{self, HistogramVec, IntCounter, IntGauge, Registry};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use command::run_command;
pub use command::{Command, Target};

use crate::execute::Executor;
use crate::idempotency::IdempotencyCache;
use crate::view::{OrderSnapshot, OrderView};

/// Bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Runs commands on orders.
    pub orders: Executor<OrderAggregate>,
    /// Runs commands on stock.
    pub inventory: Executor<InventoryAggregate>,
    /// Remembered answers per `Idempotency-Key`.
    pub idempotency: IdempotencyCache,
    /// Checks the brokers for `/readyz`.
    pub kafka: KafkaProbe,
    /// The orders' PostgreSQL read model, for lists and histories.
    pub read_model: sqlx::PgPool,
    /// The inventory's read model.
    pub inventory_model: sqlx::PgPool,
    /// Counters for `/metrics`.
    pub metrics: Arc<ApiMetrics>,
}

/// What the write path measures, served at `/metrics`.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    /// Everything below, and the appender's histograms.
    pub registry: Registry,
    /// Each command run, from its first read to its answer, by `entity`,
    /// `command` (its type name) and `outcome` (`accepted`, `refused`: a
    /// 4xx, `failed`: a 5xx).
    pub commands: HistogramVec,
    /// Answers replayed for an `Idempotency-Key` without running the command.
    pub replayed: IntCounter,
    /// Requests being answered now (what a graceful shutdown waits for).
    pub in_flight: IntGauge,
}

impl ApiMetrics {
    /// The metrics, with the appender's registered beside them.
    pub fn new(appender: &AppendMetrics) -> Self {
        let registry = Registry::new();
        let commands = metrics::histogram_vec(
            &registry,
            "order_service_command_duration_seconds",
            "How long a command took, from reading its entity to the answer.",
            &["entity", "command", "outcome"],
            metrics::LATENCY_BUCKETS,
        );
        let replayed = metrics::counter(
            &registry,
            "order_service_idempotent_replays_total",
            "Answers replayed for an Idempotency-Key, without running the command again.",
        );
        let in_flight = metrics::gauge(
            &registry,
            "order_service_http_requests_in_flight",
            "HTTP requests being answered now.",
        );
        appender
            .register(&registry)
            .expect("the appender's metrics are registered once");
        Self {
            registry,
            commands,
            replayed,
            in_flight,
        }
    }
}

/// Counts the request in [`ApiMetrics::in_flight`] while it runs.
async fn track_in_flight(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let in_flight = state.metrics.in_flight.clone();
    in_flight.inc();
    let _done = Guard(move || in_flight.dec());
    next.run(request).await
}

/// Runs its closure when dropped, so a cancelled request is counted out too.
struct Guard<F: FnMut()>(F);

impl<F: FnMut()> Drop for Guard<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// The router, drivable without a socket in tests. Every route is registered
/// through its documented handler, so `/openapi.json` lists them all.
pub fn router(state: AppState) -> Router {
    let (router, api) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(orders::place, lists::list))
        .routes(routes!(orders::get))
        .routes(routes!(lists::history))
        .routes(routes!(items::add))
        .routes(routes!(items::remove))
        .routes(routes!(transitions::confirm))
        .routes(routes!(transitions::stock_reserved))
        .routes(routes!(transitions::ship))
        .routes(routes!(transitions::deliver))
        .routes(routes!(transitions::cancel))
        .routes(routes!(inventory::list))
        .routes(routes!(inventory::create, inventory::get))
        .routes(routes!(inventory::restock))
        .routes(routes!(inventory::reserve))
        .routes(routes!(inventory::release))
        .routes(routes!(inventory::commit))
        .routes(routes!(inventory::history))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::document))
        .split_for_parts();
    let document = openapi::OpenApiJson(api.to_json().unwrap_or_default().into());
    router
        .fallback(service_kit::problem::not_found)
        .method_not_allowed_fallback(service_kit::problem::method_not_allowed)
        .layer(Extension(document))
        .layer(middleware::from_fn(trace::trace_request))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            track_in_flight,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Parses a JSON body: 413 when too large, 415 without a JSON content type,
/// 400 when not JSON, 422 when the JSON does not fit (wrong types, unknown or
/// missing fields).
fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(T, Bytes), Problem> {
    let body =
        body.map_err(|rejection| Problem::new(rejection.status()).detail(rejection.body_text()))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(
            Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE).detail(format!(
                "send the body as application/json, not `{content_type}`"
            )),
        );
    }
    // Every body of this API is an object; serde would read some structs
    // from an array too.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        let parsed = serde_json::from_slice::<serde_json::Value>(&body);
        if parsed.is_ok() {
            return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
                .detail("the body must be a JSON object"));
        }
    }
    let value = serde_json::from_slice(&body).map_err(|error| {
        let status = match error.classify() {
            serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        Problem::new(status).detail(format!("invalid JSON body: {error}"))
    })?;
    Ok((value, body))
}

fn parse_order_id(text: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(text).map_err(|_| {
        Problem::new(StatusCode::NOT_FOUND)
            .detail(format!("no order `{text}`: order ids are UUIDs"))
    })
}

/// The order view with `ETag`, or 404 when there is no order.
fn order_response(snapshot: &OrderSnapshot, created: bool) -> Response {
    let Some(view) = OrderView::of(snapshot) else {
        return Problem::new(StatusCode::NOT_FOUND)
            .detail("no such order")
            .into_response();
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, axum::Json(&view)).into_response();
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", snapshot.version)) {
        headers.insert(header::ETAG, etag);
    }
    if created
        && let Some(order) = &snapshot.state
        && let Ok(location) = HeaderValue::from_str(&format!("/orders/{}", order.id))
    {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// Runs a command on an order and answers with the order.
async fn order_command(
    state: &AppState,
    headers: &HeaderMap,
    command: Command<'_, OrderAggregate>,
) -> Response {
    run_command(state, &state.orders, headers, command, order_response).await
}
