//! Reading one entity's current state from the projector, for any entity
//! type: with `?min_version=`, once the entity has reached that version.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use domain::aggregate::{Aggregate, Snapshot};
use event_store::partition_for_key;
use service_kit::Problem;
use uuid::Uuid;

use super::AppState;
use crate::consistency::Token;
use crate::execute::Executor;
use crate::projector::{ProjectorError, Wait};

/// How long `?min_version=` may wait.
pub const MAX_READ_WAIT: Duration = Duration::from_secs(10);

/// The highest `min_version` a read may wait for (versions are stored as
/// PostgreSQL `bigint`s): beyond it the answer is a 400 at once.
pub const MAX_VERSION: u64 = i64::MAX as u64;

/// The snapshot of entity `id` (the empty one if it does not exist), or the
/// problem to answer: 400 for a `min_version` no entity can reach or a
/// token that is not this entity's log's, 504 when the version or the
/// token's write did not arrive in time, 503 while the projector is away.
pub async fn current<A: Aggregate>(
    state: &AppState,
    executor: &Executor<A>,
    id: Uuid,
    min_version: Option<u64>,
    headers: &HeaderMap,
) -> Result<Snapshot<A::State>, Problem> {
    if let Some(version) = min_version.filter(|v| *v > MAX_VERSION) {
        return Err(Problem::new(StatusCode::BAD_REQUEST).detail(format!(
            "min_version {version} is beyond any version (at most {MAX_VERSION})"
        )));
    }
    if let Some(version) = min_version {
        refuse_unreachable(executor, id, version).await?;
    }
    let mut after_offset = None;
    if let Some(token) = Token::from_request(headers)? {
        token.check(&executor.events_topic, &state.kafka).await?;
        // A write to another partition cannot have changed this entity.
        let partition =
            partition_for_key(id.hyphenated().to_string().as_bytes(), executor.partitions);
        if token.partition == partition {
            after_offset = Some(token.offset);
        }
    }
    let wait = Wait {
        min_version,
        after_offset,
        timeout: MAX_READ_WAIT,
    };
    match executor
        .projector
        .snapshot(executor.resource, id, wait)
        .await
    {
        Ok(snapshot) => Ok(snapshot),
        Err(ProjectorError::TimedOut) => Err(Problem::new(StatusCode::GATEWAY_TIMEOUT)
            .detail(format!(
                "{} {id} did not reach version {} in time",
                A::TYPE,
                min_version.unwrap_or(0)
            ))
            .retry_after(1)),
        Err(error) => {
            tracing::warn!(error = %service_kit::problem::error_chain(&error), "projector unavailable");
            Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                .detail(format!(
                    "{} state is temporarily unavailable; retry",
                    A::TYPE
                ))
                .retry_after(1))
        }
    }
}

/// How far ahead of an entity's version a read may wait: far more commands
/// than one entity takes in the longest wait ([`MAX_READ_WAIT`]).
pub const MAX_VERSION_GAP: u64 = 100_000;

/// Refuses at once, with a 409, a `version` the entity will not reach: it
/// is final (a delivered or cancelled order) below that version, or the
/// version is more than [`MAX_VERSION_GAP`] ahead. A wait is worth it only
/// for a version a command could still write in time.
async fn refuse_unreachable<A: Aggregate>(
    executor: &Executor<A>,
    id: Uuid,
    version: u64,
) -> Result<(), Problem> {
    let now = Wait {
        timeout: Duration::ZERO,
        ..Wait::default()
    };
    let Ok(snapshot) = executor
        .projector
        .snapshot::<A::State>(executor.resource, id, now)
        .await
    else {
        // Unknown now: the waiting read below says what it finds.
        return Ok(());
    };
    if snapshot.version > 0 && version > snapshot.version.saturating_add(MAX_VERSION_GAP) {
        return Err(Problem::new(StatusCode::CONFLICT)
            .detail(format!(
                "{} {id} is at version {}: version {version} is too far ahead to wait for",
                A::TYPE,
                snapshot.version
            ))
            .with("version", snapshot.version));
    }
    if snapshot.version > 0 && snapshot.version < version && A::is_terminal(&snapshot.state) {
        return Err(Problem::new(StatusCode::CONFLICT)
            .detail(format!(
                "{} {id} is final at version {}: version {version} will never come",
                A::TYPE,
                snapshot.version
            ))
            .with("version", snapshot.version));
    }
    Ok(())
}

/// Waits, when the request sent a `Consistency-Token`, until the read model
/// behind `pool` has folded past its write (see [`crate::consistency`]).
pub async fn consistent<A: Aggregate>(
    state: &AppState,
    executor: &Executor<A>,
    pool: &sqlx::PgPool,
    headers: &HeaderMap,
) -> Result<(), Problem> {
    let Some(token) = Token::from_request(headers)? else {
        return Ok(());
    };
    token.check(&executor.events_topic, &state.kafka).await?;
    token.wait_for_model(pool).await
}

/// A list's page size: 20 unless asked, 1 to `max` (else 400).
pub fn page_limit(asked: Option<u32>, max: u32) -> Result<u32, Problem> {
    let limit = asked.unwrap_or(20);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::new(StatusCode::BAD_REQUEST)
            .detail(format!("limit must be 1 to {max}, got {limit}")))
    }
}

/// A read model query failed: 503, retry.
pub fn model_unavailable(error: sqlx::Error) -> Problem {
    tracing::warn!(error = %service_kit::problem::error_chain(&error), "read model unavailable");
    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .detail("the list is temporarily unavailable; retry")
        .retry_after(1)
}
