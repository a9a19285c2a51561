//! What operators do with the effects table: look at effects, send some
//! again, and enable an endpoint that answered 410 Gone.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// One effect at one destination, as operators see it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct EffectView {
    /// `<kind>:<event id>`.
    pub effect_id: String,
    /// `smtp`, or the webhook endpoint's URL.
    pub destination: String,
    /// `email` or `webhook`.
    pub kind: String,
    /// `pending`, `attempting`, `sent` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i32,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// The entity type and id whose event caused it.
    pub entity_type: String,
    /// The entity.
    pub entity_id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// Its type.
    pub event_type: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// When the next attempt is due (pending ones).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Up to `limit` effects in `state` (any state: `None`), at `destination`,
/// of entity `entity_id`, most recent first.
pub async fn list(
    pool: &PgPool,
    state: Option<&str>,
    destination: Option<&str>,
    entity_id: Option<Uuid>,
    limit: u32,
) -> Result<Vec<EffectView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT effect_id, destination, kind, state, attempts, last_error, entity_type, entity_id,
                event_id, event_type, created_at, updated_at,
                CASE WHEN state = 'pending' THEN next_attempt_at END AS next_attempt_at
         FROM effects
         WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR destination = $2)
           AND ($3::uuid IS NULL OR entity_id = $3)
         ORDER BY seq DESC LIMIT $4",
    )
    .bind(state)
    .bind(destination)
    .bind(entity_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// What a resend of one effect found.
#[derive(Debug, PartialEq, Eq)]
pub enum Resent {
    /// Pending again, at this many destinations.
    Pending(u64),
    /// It is still pending or being attempted: nothing to resend.
    InProgress,
    /// No such effect.
    Unknown,
}

/// Makes a settled (sent or failed) effect pending again, due now, at every
/// destination or one; its attempts start over.
pub async fn resend(
    pool: &PgPool,
    effect_id: &str,
    destination: Option<&str>,
) -> Result<Resent, sqlx::Error> {
    let resent = sqlx::query(
        "UPDATE effects SET state = 'pending', attempts = 0, next_attempt_at = now(),
                            created_at = now(), lease_until = NULL, updated_at = now()
         WHERE effect_id = $1 AND ($2::text IS NULL OR destination = $2)
           AND state IN ('sent', 'failed')",
    )
    .bind(effect_id)
    .bind(destination)
    .execute(pool)
    .await?
    .rows_affected();
    if resent > 0 {
        return Ok(Resent::Pending(resent));
    }
    let exists: Option<String> = sqlx::query_scalar(
        "SELECT state FROM effects WHERE effect_id = $1 AND ($2::text IS NULL OR destination = $2) LIMIT 1",
    )
    .bind(effect_id)
    .bind(destination)
    .fetch_optional(pool)
    .await?;
    Ok(match exists {
        Some(_) => Resent::InProgress,
        None => Resent::Unknown,
    })
}

/// Makes every failed effect of `destination` (failed since `since`, when
/// given) pending again, due now; returns how many.
pub async fn resend_failed(
    pool: &PgPool,
    destination: &str,
    since: Option<DateTime<Utc>>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE effects SET state = 'pending', attempts = 0, next_attempt_at = now(),
                            created_at = now(), lease_until = NULL, updated_at = now()
         WHERE destination = $1 AND state = 'failed'
           AND ($2::timestamptz IS NULL OR updated_at >= $2)",
    )
    .bind(destination)
    .bind(since)
    .execute(pool)
    .await?
    .rows_affected())
}

/// A webhook endpoint and its effects.
#[derive(Debug, Serialize)]
pub struct EndpointView {
    /// Its URL (the effects' destination).
    pub url: String,
    /// Whether it answered 410 Gone and is not sent to.
    pub disabled: bool,
    /// Why, when disabled.
    pub reason: Option<String>,
    /// Since when.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Its effects by state.
    pub pending: i64,
    /// Failed ones.
    pub failed: i64,
    /// Sent ones.
    pub sent: i64,
}

/// The endpoints `urls` with their state and counts.
pub async fn endpoints(pool: &PgPool, urls: &[String]) -> Result<Vec<EndpointView>, sqlx::Error> {
    let mut views = Vec::new();
    for url in urls {
        let disabled: Option<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT reason, disabled_at FROM disabled_endpoints WHERE url = $1")
                .bind(url)
                .fetch_optional(pool)
                .await?;
        let (pending, failed, sent): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state IN ('pending', 'attempting')),
                    count(*) FILTER (WHERE state = 'failed'),
                    count(*) FILTER (WHERE state = 'sent')
             FROM effects WHERE destination = $1",
        )
        .bind(url)
        .fetch_one(pool)
        .await?;
        views.push(EndpointView {
            url: url.clone(),
            disabled: disabled.is_some(),
            reason: disabled.as_ref().map(|(reason, _)| reason.clone()),
            disabled_at: disabled.map(|(_, at)| at),
            pending,
            failed,
            sent,
        });
    }
    Ok(views)
}

/// Enables `url` again; with `resend_missed`, what failed since it was
/// disabled is pending again. `None` when it was not disabled.
pub async fn enable(
    pool: &PgPool,
    url: &str,
    resend_missed: bool,
) -> Result<Option<u64>, sqlx::Error> {
    let disabled_at: Option<DateTime<Utc>> =
        sqlx::query_scalar("DELETE FROM disabled_endpoints WHERE url = $1 RETURNING disabled_at")
            .bind(url)
            .fetch_optional(pool)
            .await?;
    let Some(since) = disabled_at else {
        return Ok(None);
    };
    if !resend_missed {
        return Ok(Some(0));
    }
    resend_failed(pool, url, Some(since)).await.map(Some)
}
