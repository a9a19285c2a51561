//! The effects table: what was settled, so a replay never repeats it.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};

use crate::effects::Effect;

/// The notifier's tables live in this PostgreSQL schema.
pub const SCHEMA: &str = "notifier";

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
    /// Recorded after success; a crash in between sends it again (same id).
    AtLeastOnce,
    /// Recorded before the attempt; a crash in between loses it.
    AtMostOnce,
}

/// Where an effect ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Delivered.
    Sent,
    /// Gave up (dead-lettered, or the endpoint is gone).
    Failed,
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

    /// Whether the effect needs no more work: sent, failed, or (at most
    /// once) already claimed by an earlier attempt.
    pub async fn is_settled(&self, effect: &Effect) -> Result<bool, sqlx::Error> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM effects WHERE effect_id = $1")
                .bind(&effect.id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(state.is_some())
    }

    /// At most once: claims the effect before its only attempt. False when
    /// it was claimed before (it must not run again).
    pub async fn claim(&self, effect: &Effect) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO effects (effect_id, kind, entity_type, entity_id, event_id, state, attempts)
             VALUES ($1, $2, $3, $4, $5, 'attempting', 0) ON CONFLICT (effect_id) DO NOTHING",
        )
        .bind(&effect.id)
        .bind(effect.kind.as_str())
        .bind(effect.entity_type)
        .bind(effect.entity_id)
        .bind(effect.event_id)
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Records how the effect ended.
    pub async fn record(
        &self,
        effect: &Effect,
        settled: Settled,
        attempts: u32,
        last_error: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let state = match settled {
            Settled::Sent => "sent",
            Settled::Failed => "failed",
        };
        sqlx::query(
            "INSERT INTO effects (effect_id, kind, entity_type, entity_id, event_id, state, attempts, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (effect_id) DO UPDATE SET state = EXCLUDED.state,
                 attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error, updated_at = now()",
        )
        .bind(&effect.id)
        .bind(effect.kind.as_str())
        .bind(effect.entity_type)
        .bind(effect.entity_id)
        .bind(effect.event_id)
        .bind(state)
        .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
        .bind(last_error)
        .execute(&self.pool)
        .await?;
        Ok(())
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

    /// Whether `url` answered 410 before.
    pub async fn is_disabled(&self, url: &str) -> Result<bool, sqlx::Error> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT reason FROM disabled_endpoints WHERE url = $1")
                .bind(url)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// The pool, for checks.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
