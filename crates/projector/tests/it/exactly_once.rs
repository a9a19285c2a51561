//! Guarantees 2 and 4 under `kill -9` at random moments, and in the narrowest
//! window: after the Kafka commit, before the local store write.

use std::collections::{HashMap, HashSet};

use domain::aggregate::Verdict;
use domain::inventory::InventoryAggregate;
use event_store::{KafkaConfig, StreamTopics, read_committed_to_end};
use uuid::Uuid;

use crate::support::process::Projector;
use crate::support::stock_writer::StockWriter;
use crate::support::writer::{Intent, Writer};
use crate::support::{PARTITIONS, Rng, inventory_topics, kafka, start_projector, write};
use e2e::fold::{fold_log, fold_log_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_neither_loses_nor_duplicates_anything() -> anyhow::Result<()> {
    let seed = 0x5eed_0001;
    let (topics, mut projector) = start_projector(&[]).await?;
    let writer = tokio::spawn({
        let topics = topics.clone();
        async move { write(&topics, 80, 4_000, 25, seed).await }
    });
    let mut rng = Rng::new(seed);
    for _ in 0..5 {
        // Random moments: mid-transaction, mid-commit, just after a restore.
        let records = rng.below(800);
        projector
            .wait_folded(records, || writer.is_finished())
            .await;
        projector.crash_and_restart().await;
    }
    let writer = writer.await??;

    assert_matches_the_log(&projector, &writer, &topics).await?;
    projector.terminate();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_on_both_entities_loses_and_duplicates_nothing_of_either()
-> anyhow::Result<()> {
    let seed = 0x5eed_0003;
    let (topics, mut projector) = start_projector(&[]).await?;
    let stock_topics = inventory_topics(&topics);
    let orders = tokio::spawn({
        let topics = topics.clone();
        async move { write(&topics, 40, 1_500, 25, seed).await }
    });
    let stock = tokio::task::spawn_blocking({
        let stock_topics = stock_topics.clone();
        move || -> anyhow::Result<StockWriter> {
            let mut writer = StockWriter::new(&kafka(), &stock_topics, 10, PARTITIONS, seed)?;
            writer.append(1_500, 25)?;
            Ok(writer)
        }
    });
    let mut rng = Rng::new(seed);
    for _ in 0..5 {
        let records = rng.below(800);
        let input_done = || orders.is_finished() && stock.is_finished();
        projector.wait_folded(records, input_done).await;
        projector.crash_and_restart().await;
    }
    let (orders, stock) = (orders.await??, stock.await??);
    assert!(stock.repeats > 0, "duplicates were exercised");

    assert_matches_the_log(&projector, &orders, &topics).await?;
    projector
        .wait_entity_caught_up("inventory", &stock.ends)
        .await;
    let kafka = kafka();
    let fold = fold_log_of::<InventoryAggregate>(&kafka, &stock_topics.events).await?;
    assert_changes_exactly(&kafka, &stock_topics.changes, &fold.accepted_events).await?;
    for ((id, version), snapshot) in &fold.by_version {
        let counts = snapshot.state.as_ref().expect("created first");
        assert_eq!(
            counts.received,
            counts.available + counts.reserved() + counts.shipped,
            "{id} at version {version}"
        );
    }
    for (id, expected) in stock.expected() {
        assert_eq!(
            fold.snapshots.get(&id),
            Some(expected),
            "the log agrees with the writer"
        );
        let (status, stored) = projector.json(&format!("/inventory/{id}")).await;
        assert_eq!(status, 200, "stock {id}");
        assert_eq!(stored, serde_json::to_value(expected)?, "stock {id}");
    }
    projector.terminate();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_kafka_commit_and_the_store_write_loses_nothing() -> anyhow::Result<()>
{
    let (topics, mut projector) = start_projector(&["--crash-after-commits=3"]).await?;
    let writer = write(&topics, 30, 600, 10, 0x5eed_0002).await?;
    let exit = projector.wait_exit().await;
    assert!(
        !exit.success(),
        "the injected fault ended the process: {exit}"
    );

    projector.restart().await;
    assert_matches_the_log(&projector, &writer, &topics).await?;
    projector.terminate();
    Ok(())
}

/// Once caught up: the changes topic holds each accepted event exactly once
/// and nothing else, and every order's stored state is the fold of the log.
async fn assert_matches_the_log(
    projector: &Projector,
    writer: &Writer,
    topics: &StreamTopics,
) -> anyhow::Result<()> {
    projector.wait_caught_up(&writer.ends(PARTITIONS)).await;
    let kafka = kafka();
    let fold = fold_log(&kafka, &topics.events).await?;
    let fresh: Vec<_> = writer
        .written
        .iter()
        .filter(|w| w.intent == Intent::Fresh)
        .collect();
    let expected_events: usize = fresh.iter().map(|w| w.event_ids.len()).sum();
    assert_eq!(
        fold.accepted_events.len(),
        expected_events,
        "the log accepts exactly the fresh commands"
    );
    assert!(
        writer.written.iter().any(|w| w.intent == Intent::Stale),
        "conflicts were exercised"
    );
    assert!(
        writer.written.iter().any(|w| w.intent == Intent::Repeat),
        "duplicates were exercised"
    );
    for stale in writer.written.iter().filter(|w| w.intent == Intent::Stale) {
        assert!(
            matches!(
                fold.verdicts.get(&stale.command_id),
                Some(Verdict::Conflict { .. })
            ),
            "a batch decided on an old state is a conflict"
        );
    }

    assert_changes_exactly(&kafka, &topics.changes, &fold.accepted_events).await?;

    for id in writer.order_ids() {
        let expected = fold.snapshots.get(&id).filter(|s| s.version > 0);
        assert_eq!(
            expected,
            writer.expected(id).filter(|s| s.version > 0),
            "the log agrees with the writer"
        );
        let (status, stored) = projector.json(&format!("/orders/{id}")).await;
        match expected {
            Some(snapshot) => {
                assert_eq!(status, 200, "order {id}");
                assert_eq!(stored, serde_json::to_value(snapshot)?, "order {id}");
            }
            None => assert_eq!(status, 404, "order {id} was never placed"),
        }
    }
    Ok(())
}

/// The changes topic holds each accepted event exactly once and nothing else.
async fn assert_changes_exactly(
    kafka: &KafkaConfig,
    changes_topic: &str,
    accepted_events: &HashSet<Uuid>,
) -> anyhow::Result<()> {
    let mut changes: HashMap<Uuid, usize> = HashMap::new();
    for record in read_committed_to_end(kafka, changes_topic).await? {
        let change: serde_json::Value =
            serde_json::from_slice(record.payload.as_deref().unwrap_or_default())?;
        let event_id: Uuid = change["event"]["event_id"]
            .as_str()
            .unwrap_or_default()
            .parse()?;
        *changes.entry(event_id).or_default() += 1;
    }
    let duplicated: Vec<_> = changes.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "events written twice to the changes topic: {duplicated:?}"
    );
    let missing: Vec<_> = accepted_events
        .iter()
        .filter(|id| !changes.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "accepted events missing from the changes topic: {missing:?}"
    );
    assert_eq!(
        changes.len(),
        accepted_events.len(),
        "nothing but accepted events"
    );
    Ok(())
}
