//! Measures the PostgreSQL read model on a backlog: its pipeline from offset
//! 0 to the end (exactly-once: each batch in one SQL transaction with its
//! offsets), then a full rebuild into a shadow schema and the swap.
//!
//! Needs the broker and PostgreSQL of `scripts/infra up`. Run with
//! `cargo bench --workspace --bench read_model` (`BENCH_ORDERS` sets the
//! backlog, default 1,000,000 orders of one event each; `BENCH_LANES` the
//! lanes, default one per partition).

#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use read_model::orders::OrdersProjection;
use read_model::pipeline::Limit;
use support::bench::{bench_orders, with_backlog};
use support::{PARTITIONS, kafka};
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let orders = bench_orders(1_000_000);
    let (topics, ends, _) = with_backlog(orders).await?;
    println!(
        "backlog: {orders} orders (one event each) on {} ({PARTITIONS} partitions)",
        topics.events
    );

    let db = support::database::TestDatabase::create().await?;
    let pool =
        read_model::connect(&db.url, &read_model::ORDERS, read_model::ORDERS.live, 4).await?;
    let config = read_model::PipelineConfig {
        kafka: kafka(),
        topic: topics.events.clone(),
        partitions: PARTITIONS,
        // `BENCH_LANES` deals the partitions into fewer lanes.
        lanes: std::env::var("BENCH_LANES")
            .ok()
            .and_then(|lanes| lanes.parse().ok())
            .unwrap_or(PARTITIONS as usize),
        group_id: format!("bench-read-model-{}", Uuid::now_v7().simple()),
        max_batch: 5_000,
        linger: Duration::from_millis(20),
    };
    let targets = ends
        .iter()
        .enumerate()
        .map(|(p, end)| (p as i32, *end))
        .collect();
    let (_keep, shutdown) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    read_model::Pipeline::new(
        config.clone(),
        OrdersProjection,
        pool.clone(),
        std::sync::Arc::new(read_model::PipelineMetrics::new("orders")),
    )
    .run(Limit::Until(targets), shutdown)
    .await?;
    let caught_up = started.elapsed();
    pool.close().await;

    let rebuilt = read_model::rebuild::rebuild(&db.url, config, OrdersProjection, false).await?;
    db.drop().await?;

    println!();
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| read model: {orders} events from offset 0 to caught up | {:.1} s, {:.0} events/s |",
        caught_up.as_secs_f64(),
        orders as f64 / caught_up.as_secs_f64()
    );
    println!(
        "| read model: full rebuild into a shadow schema and swap | {:.1} s |",
        rebuilt.took.as_secs_f64()
    );
    Ok(())
}
