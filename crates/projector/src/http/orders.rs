//! `GET /orders/{id}`: an order's snapshot from the store that owns it, or,
//! with `standby=true`, from a warm copy.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use domain::aggregate::Snapshot;
use domain::order::Order;
use event_store::store::Replica;
use service_kit::Problem;

use super::{
    AppState, Located, QueryParams, internal, next_fold, parse_id, query_problem, wait_past,
};

type OrderSnapshot = Snapshot<Option<Order>>;

/// The snapshot (state, version, times), with `ETag: "<version>"`. With
/// `after_offset` or `min_version` it first waits, within `wait_ms`.
pub async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let id = parse_id(&id, "the order id")?;
    let Query(params) = params.map_err(query_problem)?;
    if params.standby && (params.after_offset.is_some() || params.min_version.is_some()) {
        return Err(Problem::new(StatusCode::BAD_REQUEST)
            .detail("a standby read does not wait: after_offset and min_version need the owner"));
    }
    let located = state.locate(&id, &headers);
    if params.standby
        && !matches!(located, Ok(Located::Here(_)))
        && let Some(replica) = state.standby_of(&id)
    {
        return standby_answer(&replica, &id);
    }
    let handle = match located? {
        Located::Here(handle) => handle,
        Located::There { addr, partition } => {
            return state.forward(&addr, partition, &uri, &params).await;
        }
    };
    let deadline = params.deadline();
    let mut progress = handle.subscribe();
    let snapshot = loop {
        // Past the offset asked for, and past what earlier answers showed
        // (after a takeover or a rewind the store is behind them).
        let after = handle.read_after(params.after_offset);
        wait_past(&handle, after, deadline).await?;
        let read = handle.snapshot(&id).map_err(internal)?;
        // A rewind (an aborted transaction) may have dropped what was folded
        // since the wait: wait for the fold again.
        if read.folded <= after {
            continue;
        }
        let snapshot = decode(read.value.as_deref())?;
        let wanted = params.min_version.unwrap_or(0);
        if snapshot.version >= wanted {
            break snapshot;
        }
        if !next_fold(&mut progress, deadline).await {
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
    let mut response = answer(&snapshot, &id)?;
    let headers = response.headers_mut();
    headers.insert("x-partition", HeaderValue::from(handle.partition));
    headers.insert("x-folded-offset", HeaderValue::from(handle.folded()));
    headers.insert("x-committed-offset", HeaderValue::from(handle.committed()));
    headers.insert("x-served-by", served_by(&state));
    Ok(response)
}

/// An answer from a warm copy: it says it is one, and how far behind.
fn standby_answer(replica: &Replica, id: &uuid::Uuid) -> Result<Response, Problem> {
    let snapshot = decode(replica.store.snapshot(id).map_err(internal)?.as_deref())?;
    let mut response = answer(&snapshot, id)?;
    let headers = response.headers_mut();
    headers.insert("x-partition", HeaderValue::from(replica.partition));
    headers.insert("x-standby", HeaderValue::from_static("true"));
    // Changelog records committed but not yet applied to the copy, as last seen.
    headers.insert("x-standby-lag", HeaderValue::from(replica.lag()));
    headers.insert("x-standby-position", HeaderValue::from(replica.position()));
    Ok(response)
}

/// A stored snapshot, or the empty one of an order never placed.
fn decode(bytes: Option<&[u8]>) -> Result<OrderSnapshot, Problem> {
    Ok(match bytes {
        Some(bytes) => serde_json::from_slice(bytes).map_err(internal)?,
        None => Snapshot::default(),
    })
}

/// 200 with the snapshot and its `ETag`, or 404 for an order never placed.
fn answer(snapshot: &OrderSnapshot, id: &uuid::Uuid) -> Result<Response, Problem> {
    if snapshot.state.is_none() {
        return Err(Problem::new(StatusCode::NOT_FOUND).detail(format!("no order {id}")));
    }
    let mut response = axum::Json(snapshot).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", snapshot.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

fn served_by(state: &AppState) -> HeaderValue {
    HeaderValue::from_str(&state.instance_id).unwrap_or(HeaderValue::from_static("unknown"))
}
