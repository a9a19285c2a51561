//! The effects table: every effect is recorded pending (what to send and
//! where) before its input's offsets are committed, claimed by its
//! destination's lane when due, and settled there: sent, retried later, or
//! failed. A replay of the input finds its effects recorded and adds nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use crate::effects::{Effect, Email, Kind};

/// The notifier's tables live in this PostgreSQL schema.
pub const SCHEMA: &str = "notifier";

/// The destination of every e-mail: the SMTP relay.
pub const SMTP: &str = "smtp";

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

async fn migrate(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute("CREATE SCHEMA IF NOT EXISTS notifier").await?;
    // `run` on a borrowed connection trips the compiler's "Acquire is not
    // general enough" inside spawned tasks; `run_direct` is sqlx's way around.
    MIGRATOR
        .run_direct(None, conn, false)
        .await
        .map_err(|e| sqlx::Error::Migrate(Box::new(e)))
}

/// How an effect kind is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Attempted until delivered (or given up); a crash mid-attempt sends it
    /// again (same id).
    AtLeastOnce,
    /// Marked `attempting` before its only attempt; a crash in between loses it.
    AtMostOnce,
}

/// An effect bound for one destination, to record.
pub struct Pending<'a> {
    /// What to do.
    pub effect: &'a Effect,
    /// [`SMTP`], or a webhook endpoint's URL.
    pub destination: &'a str,
}

/// An effect claimed for an attempt.
#[derive(Clone, Debug)]
pub struct Due {
    /// What to do.
    pub effect: Effect,
    /// Where.
    pub destination: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When it was recorded (its retry window starts there).
    pub created_at: DateTime<Utc>,
}

/// The effects table.
#[derive(Clone)]
pub struct Ledger {
    pool: PgPool,
}

impl Ledger {
    /// A ledger whose pool connects on first use (the service starts while
    /// PostgreSQL is down; [`Self::prepare`] retries until it answers).
    pub fn connect_lazy(database_url: &str) -> Result<Self, sqlx::Error> {
        let options: PgConnectOptions = database_url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options.options([("search_path", SCHEMA)]));
        Ok(Self { pool })
    }

    /// Creates the schema and applies the migrations.
    pub async fn prepare(&self) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let result = migrate(&mut conn).await;
        if result.is_err() {
            // A connection that failed midway may still hold the migrator's
            // session-level lock: close it rather than return it to the pool.
            let _ = conn.detach().close().await;
        }
        result
    }

    /// The pool, for checks and the operators' queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Records effects pending, due now, in the order given (an entity's
    /// effects go out in it); those recorded before (a replay) are left as
    /// they are. Returns the kind of each one that was new.
    pub async fn record(&self, pending: &[Pending<'_>]) -> Result<Vec<String>, sqlx::Error> {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = Rows::default();
        for Pending {
            effect,
            destination,
        } in pending
        {
            rows.id.push(effect.id.clone());
            rows.destination.push((*destination).to_owned());
            rows.kind.push(effect.kind.as_str());
            rows.entity_type.push(effect.entity_type.clone());
            rows.entity_id.push(effect.entity_id);
            rows.event_id.push(effect.event_id);
            rows.event_type.push(effect.event_type.clone());
            rows.payload.push(payload(effect)?);
            rows.traceparent.push(effect.traceparent.clone());
        }
        sqlx::query_scalar(
            "INSERT INTO effects (effect_id, destination, kind, entity_type, entity_id, event_id,
                                  event_type, payload, traceparent, state, attempts,
                                  next_attempt_at)
             SELECT id, destination, kind, entity_type, entity_id, event_id, event_type, payload,
                    traceparent, 'pending', 0, now()
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::uuid[],
                         $7::text[], $8::bytea[], $9::text[])
                  WITH ORDINALITY AS t(id, destination, kind, entity_type, entity_id, event_id,
                                       event_type, payload, traceparent, n)
             ORDER BY n
             ON CONFLICT (effect_id, destination) DO NOTHING
             RETURNING kind",
        )
        .bind(&rows.id)
        .bind(&rows.destination)
        .bind(&rows.kind)
        .bind(&rows.entity_type)
        .bind(&rows.entity_id)
        .bind(&rows.event_id)
        .bind(&rows.event_type)
        .bind(&rows.payload)
        .bind(&rows.traceparent)
        .fetch_all(&self.pool)
        .await
    }

    /// Claims up to `limit` due effects of `destination`: of each entity
    /// only its earliest unsettled one, so an entity's effects go out in log
    /// order. At least once: leased for `lease` (expired, another instance
    /// may take it). At most once: marked `attempting`, never tried again.
    pub async fn claim(
        &self,
        destination: &str,
        limit: usize,
        lease: Duration,
        mode: Mode,
    ) -> Result<Vec<Due>, sqlx::Error> {
        let mut rows: Vec<DueRow> = sqlx::query_as(
            "WITH due AS (
                 SELECT e.effect_id, e.destination FROM effects e
                 WHERE e.destination = $1 AND e.state = 'pending' AND e.next_attempt_at <= now()
                   AND (e.lease_until IS NULL OR e.lease_until < now())
                   AND NOT EXISTS (
                       SELECT 1 FROM effects p
                       WHERE p.destination = e.destination AND p.entity_id = e.entity_id
                         AND p.seq < e.seq
                         AND (p.state = 'pending'
                              OR (p.state = 'attempting' AND p.lease_until > now())))
                 ORDER BY e.seq
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             UPDATE effects SET lease_until = now() + make_interval(secs => $3),
                                state = CASE WHEN $4 THEN 'attempting' ELSE effects.state END,
                                updated_at = now()
             FROM due
             WHERE effects.effect_id = due.effect_id AND effects.destination = due.destination
             RETURNING effects.effect_id, effects.destination, effects.kind, effects.entity_type,
                       effects.entity_id, effects.event_id, effects.event_type, effects.payload,
                       effects.traceparent, effects.attempts, effects.created_at, effects.seq",
        )
        .bind(destination)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(lease.as_secs_f64())
        .bind(mode == Mode::AtMostOnce)
        .fetch_all(&self.pool)
        .await?;
        rows.sort_by_key(|row| row.seq);
        rows.into_iter().map(DueRow::into_due).collect()
    }

    /// Records the effect delivered after `attempts` attempts.
    pub async fn sent(&self, due: &Due, attempts: u32) -> Result<(), sqlx::Error> {
        self.settle(due, "sent", attempts, None).await
    }

    /// Records the effect failed for good after `attempts` attempts.
    pub async fn failed(&self, due: &Due, attempts: u32, reason: &str) -> Result<(), sqlx::Error> {
        self.settle(due, "failed", attempts, Some(reason)).await
    }

    async fn settle(
        &self,
        due: &Due,
        state: &str,
        attempts: u32,
        error: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE effects SET state = $3, attempts = $4, last_error = coalesce($5, last_error),
                                lease_until = NULL, updated_at = now()
             WHERE effect_id = $1 AND destination = $2",
        )
        .bind(&due.effect.id)
        .bind(&due.destination)
        .bind(state)
        .bind(to_i32(attempts))
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Schedules the next attempt `after` from now.
    pub async fn retry(
        &self,
        due: &Due,
        attempts: u32,
        after: Duration,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE effects SET attempts = $3, last_error = $4, lease_until = NULL,
                                next_attempt_at = now() + make_interval(secs => $5),
                                updated_at = now()
             WHERE effect_id = $1 AND destination = $2",
        )
        .bind(&due.effect.id)
        .bind(&due.destination)
        .bind(to_i32(attempts))
        .bind(error)
        .bind(after.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How long until the next pending effect of `destination` is due
    /// (zero if one is due now), or `None` when none is pending.
    pub async fn next_due(&self, destination: &str) -> Result<Option<Duration>, sqlx::Error> {
        let seconds: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM min(greatest(next_attempt_at, coalesce(lease_until, next_attempt_at))) - now())::float8
             FROM effects WHERE destination = $1 AND state = 'pending'",
        )
        .bind(destination)
        .fetch_one(&self.pool)
        .await?;
        Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
    }

    /// Stops all webhooks to `url` (it answered 410 Gone).
    pub async fn disable_endpoint(&self, url: &str, reason: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO disabled_endpoints (url, reason) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(url)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether `url` answered 410 and has not been enabled again.
    pub async fn is_disabled(&self, url: &str) -> Result<bool, sqlx::Error> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT reason FROM disabled_endpoints WHERE url = $1")
                .bind(url)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }
}

/// What the `payload` column holds: the webhook's body, or the e-mail as JSON.
fn payload(effect: &Effect) -> Result<Vec<u8>, sqlx::Error> {
    match (&effect.kind, &effect.email) {
        (Kind::Email, Some(email)) => {
            serde_json::to_vec(email).map_err(|e| sqlx::Error::Encode(e.into()))
        }
        _ => Ok(effect.body.clone()),
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Column arrays for one multi-row insert.
#[derive(Default)]
struct Rows {
    id: Vec<String>,
    destination: Vec<String>,
    kind: Vec<&'static str>,
    entity_type: Vec<String>,
    entity_id: Vec<Uuid>,
    event_id: Vec<Uuid>,
    event_type: Vec<String>,
    payload: Vec<Vec<u8>>,
    traceparent: Vec<Option<String>>,
}

#[derive(sqlx::FromRow)]
struct DueRow {
    effect_id: String,
    destination: String,
    kind: String,
    entity_type: String,
    entity_id: Uuid,
    event_id: Uuid,
    event_type: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
    attempts: i32,
    created_at: DateTime<Utc>,
    seq: i64,
}

impl DueRow {
    fn into_due(self) -> Result<Due, sqlx::Error> {
        let decode = |what: String| sqlx::Error::Decode(what.into());
        let kind =
            Kind::parse(&self.kind).ok_or_else(|| decode(format!("kind `{}`", self.kind)))?;
        let (email, body) = match kind {
            Kind::Email => (
                Some(
                    serde_json::from_slice::<Email>(&self.payload)
                        .map_err(|e| decode(format!("the e-mail of {}: {e}", self.effect_id)))?,
                ),
                Vec::new(),
            ),
            Kind::Webhook => (None, self.payload),
        };
        Ok(Due {
            effect: Effect {
                id: self.effect_id,
                kind,
                entity_type: self.entity_type,
                entity_id: self.entity_id,
                event_id: self.event_id,
                event_type: self.event_type,
                email,
                body,
                traceparent: self.traceparent,
            },
            destination: self.destination,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            created_at: self.created_at,
        })
    }
}
