//! Rebuilding the model from the log while the live one keeps serving.
//!
//! The log is replayed from offset 0 into a shadow schema, in rounds that
//! each catch up to the live pipeline's stored offsets. When a round is
//! short, the live offsets table is locked (the live pipeline waits at its
//! next batch), the shadow catches up to exactly those offsets, and the two
//! schemas swap names in the same transaction. The live pipeline then finds
//! its offsets where it left them, in the new tables. A rebuild writes only
//! to PostgreSQL, so it never triggers a side effect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sqlx::{AssertSqlSafe, Connection, PgPool};
use tokio::sync::watch;

use crate::pipeline::{
    Limit, Pipeline, PipelineConfig, PipelineError, PipelineMetrics, Positions, Projection,
};
use crate::schema::{self, SchemaError};

/// When the remaining records fall below this, the swap round begins.
const SWAP_WHEN_BEHIND: i64 = 5_000;

/// Why a rebuild failed (the live model is untouched).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Opening a schema failed.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// PostgreSQL refused a statement.
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    /// The replay failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The replay stopped before reaching the live position.
    #[error("the replay stopped before catching up (shut down?)")]
    Interrupted,
}

/// What a finished rebuild did.
#[derive(Debug)]
pub struct Rebuilt {
    /// Records replayed.
    pub records: u64,
    /// Events in the rebuilt model.
    pub events: u64,
    /// Wall time.
    pub took: Duration,
}

/// Replays the log into the projection's shadow schema and swaps it in for
/// its live one; other projections' schemas are not touched.
pub async fn rebuild<P: Projection + Clone>(
    database_url: &str,
    config: PipelineConfig,
    projection: P,
    show_progress: bool,
) -> Result<Rebuilt, RebuildError> {
    let started = Instant::now();
    let model = P::MODEL;
    let (live, shadow) = (model.live, model.shadow());
    let shadow = shadow.as_str();
    let live_pool = schema::connect(database_url, &model, live, 2).await?;
    let shadow_pool = {
        let admin = schema::connect_lazy(database_url, live, 1)?;
        schema::drop_schema(&admin, shadow).await?;
        admin.close().await;
        schema::connect(database_url, &model, shadow, 4).await?
    };
    let metrics = Arc::new(PipelineMetrics::new(
        <P::Aggregate as domain::aggregate::Aggregate>::TYPE,
    ));
    let pipeline = Pipeline::new(
        config.clone(),
        projection,
        shadow_pool.clone(),
        metrics.clone(),
    );
    let (_keep, shutdown) = watch::channel(false);

    let progress = Progress::new(show_progress);
    loop {
        let target = live_positions(&live_pool, &config).await?;
        let behind = distance(&metrics.positions(), &target);
        progress.set_target(
            &metrics.positions(),
            &target,
            metrics.records.load(std::sync::atomic::Ordering::Relaxed),
        );
        if behind <= SWAP_WHEN_BEHIND {
            break;
        }
        let replay = pipeline.run(Limit::Until(target.clone()), shutdown.clone());
        tokio::pin!(replay);
        loop {
            tokio::select! {
                done = &mut replay => { done?; break; }
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    progress.tick(metrics.records.load(std::sync::atomic::Ordering::Relaxed));
                }
            }
        }
    }

    // The swap: hold the live offsets still, catch up exactly, rename.
    let mut conn = live_pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("LOCK TABLE offsets IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let target: Positions = read_positions(&mut tx, &config).await?;
    pipeline
        .run(Limit::Until(target.clone()), shutdown.clone())
        .await?;
    if metrics.positions() != target {
        return Err(RebuildError::Interrupted);
    }
    shadow_pool.close().await;
    let retired = format!("{live}_retired");
    schema::check_name(&retired)?;
    for statement in [
        format!("DROP SCHEMA IF EXISTS {retired} CASCADE"),
        format!("ALTER SCHEMA {live} RENAME TO {retired}"),
        format!("ALTER SCHEMA {shadow} RENAME TO {live}"),
        format!("DROP SCHEMA {retired} CASCADE"),
    ] {
        // Both names were checked to be plain identifiers: safe to splice.
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    // Closing waits for every connection to come back, this one included.
    drop(conn);
    live_pool.close().await;
    progress.finish(metrics.records.load(std::sync::atomic::Ordering::Relaxed));
    Ok(Rebuilt {
        records: metrics.records.load(std::sync::atomic::Ordering::Relaxed),
        events: metrics.events.load(std::sync::atomic::Ordering::Relaxed),
        took: started.elapsed(),
    })
}

async fn live_positions(pool: &PgPool, config: &PipelineConfig) -> Result<Positions, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    read_positions(&mut conn, config).await
}

async fn read_positions(
    conn: &mut sqlx::PgConnection,
    config: &PipelineConfig,
) -> Result<Positions, sqlx::Error> {
    let rows: Vec<(i32, i64)> =
        sqlx::query_as("SELECT partition, next_offset FROM offsets WHERE topic = $1")
            .bind(&config.topic)
            .fetch_all(conn)
            .await?;
    let mut positions: Positions = (0..config.partitions).map(|p| (p, 0)).collect();
    positions.extend(rows);
    Ok(positions)
}

/// Offsets (records and transaction markers) between two positions.
fn distance(from: &Positions, to: &Positions) -> i64 {
    to.iter()
        .map(|(p, target)| (target - from.get(p).copied().unwrap_or(0)).max(0))
        .sum()
}

/// A progress bar over offsets replayed, or nothing when not on a terminal.
struct Progress(Option<ProgressBar>);

impl Progress {
    fn new(show: bool) -> Self {
        Self(show.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "rebuilding {bar:40} {pos}/{len} records  {per_sec}  eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        }))
    }

    fn set_target(&self, at: &Positions, target: &Positions, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(done + distance(at, target).max(0) as u64);
            bar.set_position(done);
        }
    }

    fn tick(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done.min(bar.length().unwrap_or(done)));
        }
    }

    fn finish(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(done);
            bar.finish();
        }
    }
}
