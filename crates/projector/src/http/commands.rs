//! `GET /{entity}/{id}/commands/{command_id}`: what became of a command.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use service_kit::Problem;

use super::{
    AppState, Located, QueryParams, forward, internal, next_fold, parse_id, query_problem,
    wait_past,
};

/// The outcome (verdict, partition, offset) of a recent command on entity
/// `id`, as soon as it is folded (committed or not: the verdict cannot
/// change). Waits up to `wait_ms` for it; 404 if it is not by then (not
/// folded yet, or older than the retention of outcomes).
pub async fn get_outcome(
    State(state): State<AppState>,
    Path((entity, id, command_id)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let entity = state.entity(&entity)?;
    let id = parse_id(&id, "the id")?;
    let command_id = parse_id(&command_id, "the command id")?;
    let Query(params) = params.map_err(query_problem)?;
    let handle = match state.locate(entity, &id, &headers)? {
        Located::Here(handle) => handle,
        Located::There { addr, partition } => {
            return forward(entity, &addr, partition, &uri, &params).await;
        }
    };
    let deadline = params.deadline();
    let mut progress = handle.subscribe();
    loop {
        // Without an offset this returns at once, unless the partition moved.
        let after = params.after_offset.unwrap_or(-1);
        wait_past(&handle, after, deadline).await?;
        let read = handle.outcome(&command_id).map_err(internal)?;
        if let Some(bytes) = read.value {
            // The processor's own JSON of a `CommandOutcome`: served as stored.
            return Ok((
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                Bytes::from_owner(bytes),
            )
                .into_response());
        }
        // A rewind dropped what was folded past the offset: wait for it again.
        if read.folded <= after {
            continue;
        }
        if !next_fold(&mut progress, deadline).await {
            return Err(Problem::new(StatusCode::NOT_FOUND)
                .title("No outcome")
                .detail(format!(
                    "no outcome for command {command_id}: not folded yet, or older than the retention"
                ))
                .with("command_id", command_id.to_string()));
        }
    }
}
