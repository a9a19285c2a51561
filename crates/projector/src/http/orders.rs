//! `GET /orders/{id}`: an order's snapshot from the store that owns it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::aggregate::Snapshot;
use domain::order::Order;
use service_kit::Problem;

use super::{AppState, WaitParams, internal, next_commit, parse_id, query_problem, wait_past};

/// The snapshot (state, version, times), with `ETag: "<version>"`. With
/// `after_offset` or `min_version` it first waits, within `wait_ms`.
pub async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<WaitParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let id = parse_id(&id, "the order id")?;
    let Query(params) = params.map_err(query_problem)?;
    let handle = state.owner_of(&id)?;
    let deadline = params.deadline();
    if let Some(offset) = params.after_offset {
        wait_past(&handle, offset, deadline).await?;
    }
    let mut commits = handle.subscribe();
    let snapshot = loop {
        let snapshot: Snapshot<Option<Order>> =
            match handle.store.snapshot(&id).map_err(internal)? {
                Some(bytes) => serde_json::from_slice(&bytes).map_err(internal)?,
                None => Snapshot::default(),
            };
        let wanted = params.min_version.unwrap_or(0);
        if snapshot.version >= wanted {
            break snapshot;
        }
        if !next_commit(&mut commits, deadline).await {
            return Err(Problem::new(StatusCode::GATEWAY_TIMEOUT)
                .title("Version not reached in time")
                .detail(format!(
                    "order {id} is at version {}, not yet {wanted}",
                    snapshot.version
                ))
                .with("version", snapshot.version)
                .retry_after(1));
        }
    };
    if snapshot.state.is_none() {
        return Err(Problem::new(StatusCode::NOT_FOUND).detail(format!("no order {id}")));
    }
    let mut response = axum::Json(&snapshot).into_response();
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", snapshot.version)) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert("x-partition", HeaderValue::from(handle.partition));
    headers.insert("x-committed-offset", HeaderValue::from(handle.committed()));
    Ok(response)
}
