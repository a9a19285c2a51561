//! `GET /{entity}/{id}`: an entity's snapshot from the store that owns it,
//! or, with `standby=true`, from a warm copy.
//!
//! The stored snapshot is JSON already; it is served as stored, and only its
//! version is read here, so this handler serves any entity type.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use event_store::store::Replica;
use serde::Deserialize;
use service_kit::Problem;

use super::{
    AppState, Located, QueryParams, forward, internal, next_fold, parse_id, query_problem,
    standby_of, wait_past,
};

/// A stored snapshot: its bytes and the version they hold (0: never created).
struct Stored {
    bytes: Bytes,
    version: u64,
}

/// The snapshot (state, version, times), with `ETag: "<version>"`. With
/// `after_offset` or `min_version` it first waits, within `wait_ms`.
pub async fn get_state(
    State(state): State<AppState>,
    Path((entity, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let entity = state.entity(&entity)?;
    let id = parse_id(&id, "the id")?;
    let Query(params) = params.map_err(query_problem)?;
    if params.standby && (params.after_offset.is_some() || params.min_version.is_some()) {
        return Err(Problem::new(StatusCode::BAD_REQUEST)
            .detail("a standby read does not wait: after_offset and min_version need the owner"));
    }
    let located = state.locate(entity, &id, &headers);
    if params.standby
        && !matches!(located, Ok(Located::Here(_)))
        && let Some(replica) = standby_of(entity, &id)
    {
        return standby_answer(&replica, entity.name, &id);
    }
    let handle = match located? {
        Located::Here(handle) => handle,
        Located::There { addr, partition } => {
            return forward(entity, &addr, partition, &uri, &params).await;
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
        // An entity that does not exist is a 404 now: no client can be
        // waiting for a version of it (its id is only known once created).
        if snapshot.version >= wanted || snapshot.version == 0 {
            break snapshot;
        }
        if !next_fold(&mut progress, deadline).await {
            return Err(Problem::new(StatusCode::GATEWAY_TIMEOUT)
                .title("Version not reached in time")
                .detail(format!(
                    "{} {id} is at version {}, not yet {wanted}",
                    entity.name, snapshot.version
                ))
                .with("version", snapshot.version)
                .retry_after(1));
        }
    };
    let mut response = answer(snapshot, entity.name, &id)?;
    let headers = response.headers_mut();
    headers.insert("x-partition", HeaderValue::from(handle.partition));
    headers.insert("x-folded-offset", HeaderValue::from(handle.folded()));
    headers.insert("x-committed-offset", HeaderValue::from(handle.committed()));
    headers.insert("x-served-by", served_by(&state));
    Ok(response)
}

/// An answer from a warm copy: it says it is one, and how far behind.
fn standby_answer(replica: &Replica, name: &str, id: &uuid::Uuid) -> Result<Response, Problem> {
    let snapshot = decode(replica.store.snapshot(id).map_err(internal)?.as_deref())?;
    let mut response = answer(snapshot, name, id)?;
    let headers = response.headers_mut();
    headers.insert("x-partition", HeaderValue::from(replica.partition));
    headers.insert("x-standby", HeaderValue::from_static("true"));
    // Changelog records committed but not yet applied to the copy, as last seen.
    headers.insert("x-standby-lag", HeaderValue::from(replica.lag()));
    headers.insert("x-standby-position", HeaderValue::from(replica.position()));
    Ok(response)
}

/// A stored snapshot's version, or version 0 for an entity never created.
fn decode(bytes: Option<&[u8]>) -> Result<Stored, Problem> {
    #[derive(Deserialize)]
    struct Version {
        version: u64,
    }
    let Some(bytes) = bytes else {
        return Ok(Stored {
            bytes: Bytes::new(),
            version: 0,
        });
    };
    let Version { version } = serde_json::from_slice(bytes).map_err(internal)?;
    Ok(Stored {
        bytes: Bytes::copy_from_slice(bytes),
        version,
    })
}

/// 200 with the snapshot and its `ETag`, or 404 for an entity never created.
fn answer(snapshot: Stored, name: &str, id: &uuid::Uuid) -> Result<Response, Problem> {
    if snapshot.version == 0 {
        return Err(Problem::new(StatusCode::NOT_FOUND).detail(format!("no {name} {id}")));
    }
    let etag = format!("\"{}\"", snapshot.version);
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        snapshot.bytes,
    )
        .into_response();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

fn served_by(state: &AppState) -> HeaderValue {
    HeaderValue::from_str(&state.instance_id).unwrap_or(HeaderValue::from_static("unknown"))
}
