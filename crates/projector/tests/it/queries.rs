//! The state API: read-your-writes by offset, command outcomes, problems.

use domain::order::OrderEvent;
use event_store::partition_for_key;
use uuid::Uuid;

use crate::support::process::Projector;
use crate::support::writer::{append_raw, batch_of, placed};
use crate::support::{PARTITIONS, fresh_topics, kafka, start_projector};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_an_offset_returns_the_state_that_includes_it() -> anyhow::Result<()> {
    let (topics, projector) = start_projector(&[]).await?;
    let order_id = Uuid::now_v7();
    let append = |batch: domain::aggregate::CommandBatch<OrderEvent>| {
        let (kafka, topic) = (kafka(), topics.events.clone());
        tokio::task::spawn_blocking(move || {
            append_raw(
                &kafka,
                &topic,
                &[(order_id.to_string(), batch.encode("order"))],
            )
        })
    };

    let placed_at = append(batch_of(order_id, 0, placed(order_id))).await??[0];
    let (status, order) = projector
        .json(&format!(
            "/orders/{order_id}?after_offset={}&wait_ms=20000",
            placed_at.offset
        ))
        .await;
    assert_eq!(
        (status, order["version"].as_u64()),
        (200, Some(1)),
        "{order}"
    );

    let confirm = batch_of(order_id, 1, OrderEvent::OrderConfirmed {});
    let command_id = confirm.command_id();
    let confirmed_at = append(confirm).await??[0];
    let response = projector
        .get(&format!(
            "/orders/{order_id}?after_offset={}&wait_ms=20000",
            confirmed_at.offset
        ))
        .await;
    assert_eq!(response.headers()["etag"], "\"2\"");
    let order: serde_json::Value = response.json().await?;
    assert_eq!(order["state"]["status"], "confirmed");

    let (status, outcome) = projector
        .json(&format!(
            "/orders/{order_id}/commands/{command_id}?wait_ms=20000"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(outcome["verdict"]["verdict"], "accepted");
    assert_eq!(outcome["verdict"]["first_version"], 2);
    assert_eq!(outcome["offset"], confirmed_at.offset);

    Ok(())
}

/// A verdict cannot change once its command is folded (the input is
/// committed and the fold deterministic), so the projector answers before
/// the transaction that commits it, and a crash before that commit folds the
/// same answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folded_answers_come_before_their_commit_and_survive_a_crash() -> anyhow::Result<()> {
    let topics = fresh_topics().await?;
    let group = format!("test-group-{}", Uuid::now_v7().simple());
    let mut projector = Projector::member(
        &topics,
        &group,
        &format!("{group}-0"),
        &std::env::temp_dir().join(&group),
        // No commit for a minute, unless the test's own steps force one.
        &["--commit-interval-ms=60000"],
    );
    projector.wait_ready().await;
    let order_id = Uuid::now_v7();
    let place = batch_of(order_id, 0, placed(order_id));
    let command_id = place.command_id();
    // Other orders before it in its partition, so that folding them again
    // after the crash takes a while.
    let partition = partition_for_key(order_id.to_string().as_bytes(), PARTITIONS);
    let mut records: Vec<(String, Vec<u8>)> = std::iter::repeat_with(Uuid::now_v7)
        .filter(|id| partition_for_key(id.to_string().as_bytes(), PARTITIONS) == partition)
        .take(3_000)
        .map(|id| (id.to_string(), batch_of(id, 0, placed(id)).encode("order")))
        .collect();
    records.push((order_id.to_string(), place.encode("order")));
    let (kafka, topic) = (kafka(), topics.events.clone());
    let appended = tokio::task::spawn_blocking(move || append_raw(&kafka, &topic, &records));
    let at = *appended.await??.last().expect("the order's record");

    let read = async |projector: &Projector| {
        let path = format!(
            "/orders/{order_id}?after_offset={}&wait_ms=20000",
            at.offset
        );
        let response = projector.get(&path).await;
        let offset = |name: &str| {
            response.headers()[name]
                .to_str()
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
        };
        let offsets = (offset("x-folded-offset"), offset("x-committed-offset"));
        let body: serde_json::Value = response.json().await.expect("a JSON order");
        (
            offsets,
            body["version"].as_u64(),
            body["state"]["status"].clone(),
        )
    };
    let ((folded, committed), version, status) = read(&projector).await;
    assert!(
        folded > Some(at.offset),
        "folded past the command: {folded:?}"
    );
    assert!(
        committed <= Some(at.offset),
        "answered before the commit: {committed:?}"
    );
    assert_eq!((version, status.as_str()), (Some(1), Some("placed")));
    let outcome_path = format!("/orders/{order_id}/commands/{command_id}?wait_ms=20000");
    let (code, outcome) = projector.json(&outcome_path).await;
    assert_eq!(
        (code, &outcome["verdict"]["verdict"]),
        (200, &"accepted".into())
    );

    // The transaction never committed: the restarted projector folds the
    // records again, to the same state and verdict. A read that names no
    // offset sees the write too: it waits until the fold is back where
    // answers had been.
    projector.restart().await;
    let (code, plain) = projector
        .json(&format!("/orders/{order_id}?wait_ms=20000"))
        .await;
    assert_eq!(
        (code, plain["version"].as_u64()),
        (200, Some(1)),
        "a plain read after the crash shows the accepted write: {plain}"
    );
    let (_, version_again, status_again) = read(&projector).await;
    assert_eq!((version_again, status_again), (version, status));
    let (code, again) = projector.json(&outcome_path).await;
    assert_eq!((code, &again["verdict"]), (200, &outcome["verdict"]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_problem_details() -> anyhow::Result<()> {
    let (_topics, projector) = start_projector(&[]).await?;

    let cases = [
        ("GET", "/orders/not-a-uuid".to_owned(), 400),
        ("GET", format!("/orders/{}", Uuid::now_v7()), 404),
        (
            "GET",
            format!("/orders/{}?wait_ms=soon", Uuid::now_v7()),
            400,
        ),
        (
            "GET",
            format!("/orders/{}/commands/not-a-uuid", Uuid::now_v7()),
            400,
        ),
        ("GET", format!("/widgets/{}", Uuid::now_v7()), 404),
        ("GET", "/no/such/route".to_owned(), 404),
        ("POST", format!("/orders/{}", Uuid::now_v7()), 405),
    ];
    for (method, path, expected) in cases {
        let response = projector
            .http
            .request(method.parse()?, format!("{}{path}", projector.base_url))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), expected, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        let problem: serde_json::Value = response.json().await?;
        assert_eq!(problem["status"], expected, "{method} {path}: {problem}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{method} {path}: {problem}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_reads_zero_once_everything_is_folded() -> anyhow::Result<()> {
    let (topics, projector) = start_projector(&[]).await?;
    // Transactions end in a commit marker, which the end offset counts.
    crate::support::write(&topics, 30, 90, 5, 7).await?;
    let partitions = crate::support::eventually(
        "every partition folded to its end",
        std::time::Duration::from_secs(30),
        async || {
            let (_, ownership) = projector.json("/partitions").await;
            let partitions = ownership["partitions"].as_array()?.clone();
            let done = partitions.len() == PARTITIONS as usize
                && partitions
                    .iter()
                    .all(|p| p["folded_offset"] == p["end_offset"]);
            done.then_some(partitions)
        },
    )
    .await;
    for partition in &partitions {
        assert_eq!(partition["lag"], 0, "nothing left to fold: {partition}");
        // No writer's transaction is open: the high watermark is the end.
        assert_eq!(
            partition["high_watermark"], partition["end_offset"],
            "{partition}"
        );
    }
    assert!(
        partitions
            .iter()
            .any(|p| p["end_offset"].as_i64() > Some(0)),
        "records were written: {partitions:?}"
    );
    assert_eq!(projector.metric("projector_lag").await, 0.0);
    Ok(())
}
