//! What every entity's tables share: the snapshot column the pipeline
//! continues the fold from, and the history of accepted events.

use std::collections::HashMap;

use domain::aggregate::{Aggregate, EventPayload, Snapshot};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::copy::CopyRows;
use crate::fold::Folded;

/// The stored snapshots of `ids`, by `select`
/// (`SELECT id, snapshot FROM <table> WHERE id = ANY($1)`).
pub async fn load_snapshots<A: Aggregate>(
    conn: &mut PgConnection,
    select: &'static str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Snapshot<A::State>>, sqlx::Error> {
    let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(select).bind(ids).fetch_all(conn).await?;
    rows.into_iter()
        .map(|(id, bytes)| Ok((id, decode_snapshot(&bytes)?)))
        .collect()
}

/// A stored snapshot (a `snapshot` column holds its JSON bytes).
pub fn decode_snapshot<S: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<Snapshot<S>, sqlx::Error> {
    serde_json::from_slice(bytes).map_err(|e| sqlx::Error::Decode(e.into()))
}

/// A snapshot's stored form.
pub fn encode_snapshot<S: serde::Serialize>(
    snapshot: &Snapshot<S>,
) -> Result<Vec<u8>, sqlx::Error> {
    serde_json::to_vec(snapshot).map_err(|e| sqlx::Error::Encode(e.into()))
}

/// Appends the batch's accepted events to a history table by `copy`
/// (`COPY <table> (<id>, version, event_id, command_id, event_type,
/// occurred_at, event) FROM STDIN (FORMAT binary)`).
pub async fn write_history<A: Aggregate>(
    conn: &mut PgConnection,
    folded: &Folded<A>,
    copy: &'static str,
) -> Result<(), sqlx::Error> {
    let mut events = CopyRows::new(7);
    for event in &folded.accepted {
        let body = event.encode(A::TYPE);
        events
            .row()
            .uuid(&event.aggregate_id)
            .int8(to_i64(event.version))
            .uuid(&event.event_id)
            .uuid(&event.command_id)
            .text(event.event.event_type())
            .timestamptz(Some(event.occurred_at))
            .bytes(&body);
    }
    events.send(conn, copy).await?;
    Ok(())
}

/// An entity's accepted events (the wire envelopes), oldest first, by
/// `select` (`SELECT event FROM <table> WHERE <id> = $1 ORDER BY version`);
/// `None` for an entity the model does not know.
pub async fn history(
    pool: &sqlx::PgPool,
    select: &'static str,
    id: Uuid,
) -> Result<Option<Vec<serde_json::Value>>, sqlx::Error> {
    let events: Vec<sqlx::types::Json<serde_json::Value>> =
        sqlx::query_scalar(select).bind(id).fetch_all(pool).await?;
    Ok((!events.is_empty()).then(|| events.into_iter().map(|e| e.0).collect()))
}

/// Counts and cents fit in `bigint` by the domain's limits.
pub fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The next offset of `topic`'s `partition` the model has not folded yet
/// (0 when it has folded nothing there).
pub async fn next_offset(
    pool: &sqlx::PgPool,
    topic: &str,
    partition: i32,
) -> Result<i64, sqlx::Error> {
    let next: Option<i64> =
        sqlx::query_scalar("SELECT next_offset FROM offsets WHERE topic = $1 AND partition = $2")
            .bind(topic)
            .bind(partition)
            .fetch_optional(pool)
            .await?;
    Ok(next.unwrap_or(0))
}
