//! Measures the projector on a backlog: fold throughput with exactly-once on,
//! restore rate from the changelog, and peak resident memory of each phase
//! (the read model has a benchmark of its own: `read_model`).
//!
//! Needs the broker of `scripts/infra up`. Run with
//! `cargo bench --workspace --bench catch_up` (`BENCH_ORDERS` sets the
//! backlog, default 1,000,000 orders of one event each, so the changelog then
//! holds as many orders; `BENCH_PROJECTOR` runs another build of the
//! projector, for a before/after pair).

#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::bench::{bench_orders, with_backlog};
use support::process::Projector;
use support::{PARTITIONS, eventually};
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let orders = bench_orders(1_000_000);
    let (topics, ends, produced) = with_backlog(orders).await?;
    println!(
        "backlog: {orders} orders (one event each) on {} ({PARTITIONS} partitions)",
        topics.events
    );
    println!(
        "produced in {:.1} s ({:.0} records/s)",
        produced.as_secs_f64(),
        orders as f64 / produced.as_secs_f64()
    );

    let group = format!("bench-group-{}", Uuid::now_v7().simple());
    let state_dir = std::env::temp_dir().join(&group);

    let started = Instant::now();
    // The state store alone: the read model is measured on its own below.
    let state_store_only = ["--read-model=false"];
    let mut projector = Projector::start_with(&topics, &group, &state_dir, &state_store_only).await;
    let ready = started.elapsed();
    projector.wait_caught_up(&ends).await;
    let folded = started.elapsed();
    let fold_peak = peak_rss_mib(projector.pid());
    projector.terminate();

    std::fs::remove_dir_all(&state_dir)?;
    let started = Instant::now();
    let projector = Projector::start_with(&topics, &group, &state_dir, &state_store_only).await;
    let restored = started.elapsed();
    let restore_peak = peak_rss_mib(projector.pid());
    let sample = eventually("a restored order", Duration::from_secs(10), async || {
        let (_, ownership) = projector.json("/partitions").await;
        ownership["partitions"].as_array().map(Vec::len)
    })
    .await;
    drop(projector);
    let _ = std::fs::remove_dir_all(&state_dir);

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!();
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| fold: {orders} events from start to caught up | {:.1} s, {:.0} events/s |",
        folded.as_secs_f64(),
        rate(orders, folded)
    );
    println!(
        "| fold: after the first assignment ({:.1} s) | {:.0} events/s |",
        ready.as_secs_f64(),
        rate(orders, folded - ready)
    );
    println!("| fold: peak resident memory | {fold_peak} MiB |");
    println!(
        "| restore: {orders} orders from the changelog to ready | {:.1} s, {:.0} orders/s |",
        restored.as_secs_f64(),
        rate(orders, restored)
    );
    println!("| restore: peak resident memory | {restore_peak} MiB |");
    println!("({sample} partitions owned after restore)");
    Ok(())
}

/// The process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib(pid: Option<u32>) -> u64 {
    let status = pid.and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok());
    status
        .as_deref()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
