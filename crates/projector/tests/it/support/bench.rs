//! What the benchmarks share (the tests compile it too, unused).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use event_store::StreamTopics;

use super::{fresh_topics, kafka, writer};

/// The backlog a benchmark runs on: `BENCH_ORDERS` orders, else `default`.
pub fn bench_orders(default: usize) -> usize {
    std::env::var("BENCH_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Fresh topics with a backlog of `orders` one-event commands (see
/// [`writer::backlog`]); returns them, each partition's end, and how long
/// producing took.
pub async fn with_backlog(orders: usize) -> anyhow::Result<(StreamTopics, Vec<i64>, Duration)> {
    /// Commands per producer transaction.
    const PER_TRANSACTION: usize = 10_000;
    let topics = fresh_topics().await?;
    let started = Instant::now();
    let ends = tokio::task::spawn_blocking({
        let (kafka, topic) = (kafka(), topics.events.clone());
        move || writer::backlog(&kafka, &topic, orders, PER_TRANSACTION)
    })
    .await??;
    Ok((topics, ends, started.elapsed()))
}
