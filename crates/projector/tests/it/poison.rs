//! Guarantee 8: poison goes to the dead-letter topic; a record from newer
//! code stops its partition and only that one.

use std::time::Duration;

use domain::order::OrderEvent;
use event_store::{partition_for_key, read_committed_to_end};
use uuid::Uuid;

use crate::support::writer::{append_raw, batch_of, placed};
use crate::support::{PARTITIONS, eventually, kafka, start_projector};

fn place_record(order_id: Uuid) -> (String, Vec<u8>) {
    (
        order_id.to_string(),
        batch_of(order_id, 0, placed(order_id)).encode("order"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_goes_to_the_dead_letter_topic_and_its_partition_goes_on() -> anyhow::Result<()> {
    let (topics, projector) = start_projector(&[]).await?;
    let order_id = Uuid::now_v7();
    let garbage = b"\x00\x01 definitely not an envelope".to_vec();

    let appended = tokio::task::spawn_blocking({
        let (kafka, topic, garbage) = (kafka(), topics.events.clone(), garbage.clone());
        move || {
            append_raw(
                &kafka,
                &topic,
                &[(order_id.to_string(), garbage), place_record(order_id)],
            )
        }
    })
    .await??;

    let (status, order) = projector
        .json(&format!("/orders/{order_id}?min_version=1&wait_ms=20000"))
        .await;
    assert_eq!(
        status, 200,
        "the record after the poison is folded: {order}"
    );
    assert_eq!(order["version"], 1);

    // Answers come from the folded state; the dead letter is sent with the commit.
    let placed = &appended[1];
    projector
        .wait_committed_past(placed.partition, placed.offset)
        .await;
    let dead = read_committed_to_end(&kafka(), &topics.events_dlq).await?;
    assert_eq!(dead.len(), 1, "exactly the poison record");
    assert_eq!(dead[0].payload.as_deref(), Some(garbage.as_slice()));
    assert_eq!(
        dead[0].key.as_deref(),
        Some(order_id.to_string().as_bytes())
    );
    let header = |name: &str| {
        dead[0]
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
    };
    assert!(
        header("dlq.reason").is_some_and(|r| r.contains("not a valid event envelope")),
        "{:?}",
        dead[0].headers
    );
    assert_eq!(header("dlq.offset"), Some(appended[0].offset.to_string()));
    assert_eq!(
        header("dlq.partition"),
        Some(appended[0].partition.to_string())
    );
    Ok(())
}

/// Two order ids whose records land in different partitions.
fn ids_in_two_partitions() -> (Uuid, Uuid) {
    let partition = |id: Uuid| partition_for_key(id.to_string().as_bytes(), PARTITIONS);
    let first = Uuid::now_v7();
    let second = std::iter::repeat_with(Uuid::now_v7)
        .find(|id| partition(*id) != partition(first))
        .expect("some id lands elsewhere");
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_version_stops_its_partition_and_only_that_one() -> anyhow::Result<()> {
    let (topics, projector) = start_projector(&[]).await?;
    let (blocked, healthy) = ids_in_two_partitions();
    let stopped_partition = partition_for_key(blocked.to_string().as_bytes(), PARTITIONS);
    let (key, current) = place_record(blocked);
    let from_the_future =
        String::from_utf8(current)?.replace("\"schema_version\":1", "\"schema_version\":99");

    let appended = tokio::task::spawn_blocking({
        let (kafka, topic) = (kafka(), topics.events.clone());
        move || {
            let after = batch_of(blocked, 0, OrderEvent::OrderConfirmed {}).encode("order");
            append_raw(
                &kafka,
                &topic,
                &[
                    (key.clone(), from_the_future.into_bytes()),
                    (key, after),
                    place_record(healthy),
                ],
            )
        }
    })
    .await??;

    let (status, order) = projector
        .json(&format!("/orders/{healthy}?min_version=1&wait_ms=20000"))
        .await;
    assert_eq!(status, 200, "the other partition goes on: {order}");

    let reason = eventually(
        "the partition to stop",
        Duration::from_secs(20),
        async || {
            let (_, ownership) = projector.json("/partitions").await;
            let partition = ownership["partitions"]
                .as_array()?
                .iter()
                .find(|p| p["partition"].as_i64() == Some(i64::from(stopped_partition)))?
                .clone();
            (partition["state"] == "stopped")
                .then(|| partition["reason"].as_str().unwrap_or_default().to_owned())
        },
    )
    .await;
    assert!(reason.contains("schema version 99"), "{reason}");

    let response = projector.get(&format!("/orders/{blocked}")).await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let (ready, _) = projector.json("/readyz").await;
    assert_eq!(ready, 503, "a stopped partition makes the instance unready");
    let healthy_record = &appended[2];
    projector
        .wait_committed_past(healthy_record.partition, healthy_record.offset)
        .await;
    let dead = read_committed_to_end(&kafka(), &topics.events_dlq).await?;
    assert!(
        dead.is_empty(),
        "a valid record from newer code is not dead-lettered"
    );
    Ok(())
}
