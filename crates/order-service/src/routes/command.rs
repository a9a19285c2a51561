//! What every command route shares, for any entity type: `If-Match`,
//! `Idempotency-Key` (a retry gets the first answer and appends nothing),
//! running the command on the write path, and answering with the entity's
//! view or a problem.

use std::time::{Duration, Instant};

use axum::body::to_bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::aggregate::{Aggregate, Snapshot, Verdict};
use event_store::trace_context::TraceParent;
use service_kit::Problem;
use uuid::Uuid;

use super::AppState;
use crate::consistency::{self, Token};
use crate::execute::{CommandRequest, Executor, Position};
use crate::idempotency::{Claim, StoredResponse, derived_id, fingerprint};
use crate::projector::Wait;

/// `If-Match: "<version>"` (a weak `W/` tag is accepted too).
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    text.strip_prefix("W/")
        .unwrap_or(text)
        .strip_prefix('"')
        .and_then(|tag| tag.strip_suffix('"'))
        .filter(|tag| !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|tag| tag.parse().ok())
        .map(Some)
        .ok_or_else(|| {
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

/// A command request as the handlers see it.
pub struct Command<'a, A: Aggregate> {
    /// Method and path: with the body, what an `Idempotency-Key` stands for.
    pub route: &'a str,
    /// The raw body.
    pub body: &'a [u8],
    /// The entity it is for.
    pub target: Target,
    /// The command, given the entity's id.
    pub build: Box<dyn FnOnce(Uuid) -> A::Command + Send + 'a>,
}

/// Which entity a command is for.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// A new entity: its id is derived from the `Idempotency-Key`, or new.
    New,
    /// A new entity at the id of its natural key (a SKU's stock): 201 when
    /// accepted; `decide` refuses it if the entity exists.
    Create(Uuid),
    /// An existing entity.
    Existing(Uuid),
}

impl Target {
    fn known_id(self) -> Option<Uuid> {
        match self {
            Target::New => None,
            Target::Create(id) | Target::Existing(id) => Some(id),
        }
    }
}

/// How an entity type answers with its state: 200, or 201 when `created`,
/// with its view and `ETag`.
pub type Respond<A> = fn(&Snapshot<<A as Aggregate>::State>, bool) -> Response;

/// Runs a command with `If-Match` and `Idempotency-Key` handling and
/// answers with `respond`.
pub async fn run_command<A: Aggregate>(
    state: &AppState,
    executor: &Executor<A>,
    headers: &HeaderMap,
    command: Command<'_, A>,
    respond: Respond<A>,
) -> Response {
    let (if_match, key) = match (if_match(headers), idempotency_key(headers)) {
        (Ok(if_match), Ok(key)) => (if_match, key),
        (Err(problem), _) | (_, Err(problem)) => return problem.into_response(),
    };
    let created = !matches!(command.target, Target::Existing(_));
    // The request's span is the parent of what the command appends.
    let trace = super::trace::request_span().unwrap_or_else(TraceParent::new_root);
    let Some(key) = key else {
        let aggregate_id = command.target.known_id().unwrap_or_else(Uuid::now_v7);
        let request = CommandRequest {
            aggregate_id,
            command: (command.build)(aggregate_id),
            command_id: Uuid::now_v7(),
            if_match,
            // Minted just now: nothing to read before deciding.
            new_id: matches!(command.target, Target::New),
            trace,
        };
        return execute(state, executor, request, created, respond).await;
    };

    let ticket = match state
        .idempotency
        .claim(&key, fingerprint(command.route, command.body))
    {
        Claim::Run(ticket) => ticket,
        Claim::Replay(stored) => {
            state.metrics.replayed.inc();
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
    let aggregate_id = command
        .target
        .known_id()
        .unwrap_or_else(|| derived_id(A::TYPE, &key));
    let command_id = derived_id(command.route, &key);
    let response = match already_done(executor, command_id, aggregate_id).await {
        Some((snapshot, position)) => with_token(respond(&snapshot, created), executor, position),
        None => {
            let request = CommandRequest {
                aggregate_id,
                command: (command.build)(aggregate_id),
                command_id,
                if_match,
                // Derived from the key: an earlier attempt may have placed it.
                new_id: false,
                trace,
            };
            execute(state, executor, request, created, respond).await
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
/// its entity's current snapshot and the command's position, without
/// appending anything.
async fn already_done<A: Aggregate>(
    executor: &Executor<A>,
    command_id: Uuid,
    aggregate_id: Uuid,
) -> Option<(Snapshot<A::State>, Option<Position>)> {
    let outcome = executor
        .projector
        .outcome(
            executor.resource,
            command_id,
            aggregate_id,
            None,
            Duration::ZERO,
        )
        .await
        .ok()??;
    if !matches!(
        outcome.verdict,
        Verdict::Accepted { .. } | Verdict::Duplicate
    ) {
        return None;
    }
    let wait = Wait {
        timeout: executor.verdict_timeout,
        ..Wait::default()
    };
    let position = Position {
        partition: outcome.partition,
        offset: outcome.offset,
    };
    let snapshot = executor
        .state_after(aggregate_id, outcome.offset, wait)
        .await
        .ok()?;
    Some((snapshot, Some(position)))
}

/// Adds the write's `Consistency-Token`, when it has a position.
fn with_token<A: Aggregate>(
    mut response: Response,
    executor: &Executor<A>,
    position: Option<Position>,
) -> Response {
    let token = position.and_then(|p| Token::new(&executor.events_topic, p).header_value());
    if let Some(token) = token
        && response.status().is_success()
    {
        response.headers_mut().insert(consistency::HEADER, token);
    }
    response
}

async fn execute<A: Aggregate>(
    state: &AppState,
    executor: &Executor<A>,
    request: CommandRequest<A>,
    created: bool,
    respond: Respond<A>,
) -> Response {
    let started = Instant::now();
    let (outcome, response) = match executor.execute(&request).await {
        Ok(executed) => (
            "accepted",
            with_token(
                respond(&executed.snapshot, created),
                executor,
                executed.position,
            ),
        ),
        Err(error) => {
            let problem = error.into_problem(A::TYPE);
            let outcome = if problem.status().is_server_error() {
                "failed"
            } else {
                "refused"
            };
            (outcome, problem.into_response())
        }
    };
    state
        .metrics
        .commands
        .with_label_values(&[A::TYPE, A::command_name(&request.command), outcome])
        .observe(started.elapsed().as_secs_f64());
    response
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
