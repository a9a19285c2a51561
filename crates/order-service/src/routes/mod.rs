//! The public API, one module per resource, and what the handlers share:
//! body parsing, `If-Match`, `Idempotency-Key`, the order response.

mod health;
mod items;
mod lists;
mod openapi;
mod orders;
mod transitions;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Bytes, to_bytes};
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use domain::order::OrderCommand;
use event_store::probe::KafkaProbe;
use serde::de::DeserializeOwned;
use service_kit::Problem;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::execute::{CommandRequest, Executor};
use crate::idempotency::{Claim, IdempotencyCache, StoredResponse, derived_id, fingerprint};
use crate::projector::OrderSnapshot;
use crate::view::OrderView;

/// Bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Runs commands.
    pub executor: Executor,
    /// Remembered answers per `Idempotency-Key`.
    pub idempotency: IdempotencyCache,
    /// Checks the brokers for `/readyz`.
    pub kafka: KafkaProbe,
    /// The PostgreSQL read model, for lists and histories.
    pub read_model: sqlx::PgPool,
    /// Counters for `/metrics`.
    pub metrics: Arc<ApiMetrics>,
}

/// Counters of the write path.
#[derive(Default, Debug)]
pub struct ApiMetrics {
    /// Commands that took effect.
    pub accepted: AtomicU64,
    /// Commands refused (4xx).
    pub refused: AtomicU64,
    /// Commands that failed for a server-side reason (5xx).
    pub failed: AtomicU64,
    /// Answers replayed for an `Idempotency-Key`.
    pub replayed: AtomicU64,
    /// Requests being answered now (what a graceful shutdown waits for).
    pub in_flight: AtomicU64,
}

/// Counts the request in [`ApiMetrics::in_flight`] while it runs.
async fn track_in_flight(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let metrics = state.metrics.clone();
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let _done = Guard(move || {
        metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    });
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
        .routes(routes!(transitions::ship))
        .routes(routes!(transitions::deliver))
        .routes(routes!(transitions::cancel))
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

/// `If-Match: "<version>"` (a weak `W/` tag is accepted too).
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let tag = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    tag.parse().map(Some).map_err(|_| {
        Problem::new(StatusCode::BAD_REQUEST)
            .detail(format!("If-Match must be an ETag like \"3\", got `{text}`"))
    })
}

/// `Idempotency-Key`: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_owned()))
        }
        _ => Err(Problem::new(StatusCode::BAD_REQUEST)
            .detail("Idempotency-Key must be 1 to 255 visible ASCII characters")),
    }
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

/// A command request as the handlers see it.
struct Command<'a> {
    route: &'a str,
    body: &'a [u8],
    /// `None` for a new order: its id comes from the key, or is new.
    order_id: Option<Uuid>,
    build: Box<dyn FnOnce(Uuid) -> OrderCommand + Send + 'a>,
}

/// Runs a command with `If-Match` and `Idempotency-Key` handling.
async fn run_command(state: &AppState, headers: &HeaderMap, command: Command<'_>) -> Response {
    let (if_match, key) = match (if_match(headers), idempotency_key(headers)) {
        (Ok(if_match), Ok(key)) => (if_match, key),
        (Err(problem), _) | (_, Err(problem)) => return problem.into_response(),
    };
    let created = command.order_id.is_none();
    let Some(key) = key else {
        let order_id = command.order_id.unwrap_or_else(Uuid::now_v7);
        let request = CommandRequest {
            order_id,
            command: (command.build)(order_id),
            command_id: Uuid::now_v7(),
            if_match,
            // Minted just now: nothing to read before deciding.
            new_id: created,
        };
        return execute(state, request, created).await;
    };

    let ticket = match state
        .idempotency
        .claim(&key, fingerprint(command.route, command.body))
    {
        Claim::Run(ticket) => ticket,
        Claim::Replay(stored) => {
            state.metrics.replayed.fetch_add(1, Ordering::Relaxed);
            return replay(stored);
        }
        Claim::Mismatch => {
            return Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
                .detail("this Idempotency-Key was used with another request; use a new key for a new request")
                .into_response();
        }
        Claim::InFlight => {
            return Problem::new(StatusCode::CONFLICT)
                .detail("a request with this Idempotency-Key is still being processed")
                .retry_after(1)
                .into_response();
        }
    };
    let order_id = command
        .order_id
        .unwrap_or_else(|| derived_id("order", &key));
    let command_id = derived_id(command.route, &key);
    let response = match already_done(state, command_id, order_id).await {
        Some(snapshot) => order_response(&snapshot, created),
        None => {
            let request = CommandRequest {
                order_id,
                command: (command.build)(order_id),
                command_id,
                if_match,
                // Derived from the key: an earlier attempt may have placed it.
                new_id: false,
            };
            execute(state, request, created).await
        }
    };
    if response.status().is_server_error() {
        // Dropping the ticket releases the key: the retry runs again.
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        return Problem::internal().into_response();
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    ticket.finish(stored.clone());
    replay(stored)
}

/// A command already judged (by this or another instance, before a restart):
/// its order's current snapshot, without appending anything.
async fn already_done(state: &AppState, command_id: Uuid, order_id: Uuid) -> Option<OrderSnapshot> {
    let projector = &state.executor.projector;
    let outcome = projector
        .outcome(command_id, order_id, None, std::time::Duration::ZERO)
        .await
        .ok()??;
    if !matches!(
        outcome.verdict,
        domain::aggregate::Verdict::Accepted { .. } | domain::aggregate::Verdict::Duplicate
    ) {
        return None;
    }
    let wait = crate::projector::Wait {
        after_offset: Some(outcome.offset),
        timeout: state.executor.verdict_timeout,
        ..Default::default()
    };
    projector.snapshot(order_id, wait).await.ok()
}

async fn execute(state: &AppState, request: CommandRequest, created: bool) -> Response {
    match state.executor.execute(&request).await {
        Ok(snapshot) => {
            state.metrics.accepted.fetch_add(1, Ordering::Relaxed);
            order_response(&snapshot, created)
        }
        Err(error) => {
            let problem = error.into_problem();
            let counter = if problem.status().is_server_error() {
                &state.metrics.failed
            } else {
                &state.metrics.refused
            };
            counter.fetch_add(1, Ordering::Relaxed);
            problem.into_response()
        }
    }
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = (
        StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
        stored.body,
    )
        .into_response();
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
