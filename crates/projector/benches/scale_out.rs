//! Measures projector instances sharing a consumer group: catch-up
//! throughput over a backlog with 1, 2 and 3 instances, and how long the
//! partitions of an instance killed with `kill -9` take to answer again
//! from their new owner, without and with standby copies.
//!
//! Needs the broker of `scripts/infra up`. Run with
//! `cargo bench --workspace --bench scale_out` (`BENCH_ORDERS` sets the
//! backlog, default 600,000 orders of one event each).

#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use e2e::cluster::key_in_partition;
use e2e::metrics::Metrics;
use event_store::StreamTopics;
use support::bench::{bench_orders, with_backlog};
use support::process::Projector;
use support::{PARTITIONS, eventually, wait_group_caught_up, wait_standbys_current};
use uuid::Uuid;

/// Takeovers are measured with these session timeouts (ms): the smallest
/// the broker allows by default, and the smallest the development broker
/// allows (`group.min.session.timeout.ms=1000`). The session is the floor
/// of any takeover after a crash.
const SESSION_TIMEOUTS: [u64; 2] = [6000, 1000];
/// Kills measured per configuration (the moment of the crash against the
/// heartbeats makes each one differ).
const TAKEOVERS: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let orders = bench_orders(600_000);
    println!("backlog: {orders} orders, {PARTITIONS} partitions, fresh topics for each run");

    println!();
    println!("| measure | result |");
    println!("|---|---|");
    // BENCH_ONLY=takeover skips the catch-up runs.
    let catch_up = std::env::var("BENCH_ONLY").as_deref() != Ok("takeover");
    for instances in (1..=3).filter(|_| catch_up) {
        let (topics, ends, _) = with_backlog(orders).await?;
        let started = Instant::now();
        let members = start_group(&topics, instances, &["--read-model=false"]).await;
        wait_group_caught_up(&members, &ends).await;
        let took = started.elapsed();
        println!(
            "| catch-up, {instances} instance(s) | {:.1} s, {:.0} events/s |",
            took.as_secs_f64(),
            orders as f64 / took.as_secs_f64()
        );
    }
    let configurations = SESSION_TIMEOUTS
        .iter()
        .flat_map(|&session| [(session, 0), (session, 1)]);
    for (session, standbys) in configurations {
        let (topics, ends, _) = with_backlog(orders).await?;
        let standby_flag = format!("--standby-replicas={standbys}");
        let session_flag = format!("--session-timeout-ms={session}");
        let flags = ["--read-model=false", &session_flag, &standby_flag];
        let mut members = start_group(&topics, 3, &flags).await;
        for round in 1..=TAKEOVERS {
            wait_group_caught_up(&members, &ends).await;
            if standbys > 0 {
                wait_standbys_current(&members, &topics.changelog).await;
            }
            let victim_partitions = members[0].owned().await;
            members[0].kill9();
            let killed_at = Instant::now();
            let mut restore = 0.0f64;
            for &partition in &victim_partitions {
                let probe = key_in_partition(partition, PARTITIONS);
                eventually("the takeover", Duration::from_secs(180), async || {
                    let (status, _) = members[1].json(&format!("/orders/{probe}")).await;
                    (status == 404).then_some(())
                })
                .await;
                for survivor in &members[1..] {
                    if survivor.owned().await.contains(&partition) {
                        let text = survivor.get("/metrics").await.text().await?;
                        let seconds = Metrics::parse(&text)
                            .ok()
                            .and_then(|m| {
                                m.sample(
                                    "projector_restore_seconds",
                                    &[("partition", &partition.to_string())],
                                )
                            })
                            .unwrap_or_default();
                        restore = restore.max(seconds);
                    }
                }
            }
            println!(
                "| takeover {round} after kill -9, session {:.0} s, {standbys} standby cop{} per partition ({} orders a partition) | {:.1} s, of which restoring {:.2} s |",
                session as f64 / 1000.0,
                if standbys == 1 { "y" } else { "ies" },
                orders as i32 / PARTITIONS,
                killed_at.elapsed().as_secs_f64(),
                restore
            );
            members[0].restart().await;
        }
    }

    Ok(())
}

/// `instances` members of a new group, each with its own state folder, ready.
async fn start_group(topics: &StreamTopics, instances: usize, flags: &[&str]) -> Vec<Projector> {
    let group = format!("bench-scale-{}", Uuid::now_v7().simple());
    let members: Vec<Projector> = (0..instances)
        .map(|i| {
            let instance = format!("{group}-{i}");
            let state_dir = std::env::temp_dir().join(&instance);
            Projector::member(topics, &group, &instance, &state_dir, flags)
        })
        .collect();
    for member in &members {
        member.wait_ready().await;
    }
    members
}
