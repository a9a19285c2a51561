//! Guarantee 6: concurrent conflicting commands on one order.

use std::collections::BTreeSet;

use domain::aggregate::{CommandBatch, Snapshot, Verdict};
use domain::order::{Order, OrderAggregate, OrderEvent};
use event_store::read_committed_to_end;
use reqwest::Method;
use serde_json::json;

use crate::support::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_commands_on_one_order_get_truthful_answers_and_gapless_versions() {
    let system = start().await;
    let id = system.place().await;

    // 49 adds of distinct SKUs race one confirm: adds before the confirm are
    // legal, adds after it are not.
    let mut tasks = Vec::new();
    for n in 0..50 {
        let request = if n == 25 {
            system.request(Method::POST, &format!("/orders/{id}/confirm"))
        } else {
            system
                .request(Method::POST, &format!("/orders/{id}/items"))
                .json(&json!({"sku": format!("SKU-{n}"), "quantity": 1, "unit_price_cents": 100}))
        };
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.expect("answers");
            let status = response.status().as_u16();
            (
                n,
                status,
                response
                    .json::<serde_json::Value>()
                    .await
                    .unwrap_or_default(),
            )
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("joined"));
    }

    let (_, _, order) = system.get(&format!("/orders/{id}")).await;
    let skus: BTreeSet<String> = order["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["sku"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut versions = BTreeSet::new();
    for (n, status, body) in &answers {
        match status {
            200 => {
                assert!(
                    versions.insert(body["version"].as_u64().expect("version")),
                    "two answers claim one version"
                );
                if *n != 25 {
                    assert!(
                        skus.contains(&format!("SKU-{n}")),
                        "a 200 add is in the order"
                    );
                }
            }
            409 => assert!(
                *n == 25 || !skus.contains(&format!("SKU-{n}")),
                "a refused add left no trace: {body}"
            ),
            other => panic!("command {n}: unexpected {other}: {body}"),
        }
    }
    let confirmed = answers
        .iter()
        .any(|(n, status, _)| *n == 25 && *status == 200);
    assert_eq!(
        order["status"],
        if confirmed { "confirmed" } else { "placed" }
    );
    let final_version = order["version"].as_u64().expect("version");
    assert_eq!(
        versions,
        (2..=final_version).collect(),
        "every accepted version was answered once"
    );

    // The log: accepted versions are gapless and no accepted add follows the confirm.
    let mut snapshot = Snapshot::<Option<Order>>::default();
    let mut accepted = Vec::new();
    for record in read_committed_to_end(system.kafka(), &system.topics.events)
        .await
        .expect("readable")
    {
        let batch = CommandBatch::<OrderEvent>::decode(
            record.payload.as_deref().unwrap_or_default(),
            "order",
        )
        .expect("valid batches only");
        let (next, verdict) = snapshot.apply::<OrderAggregate>(&batch);
        if let Verdict::Accepted { first_version, .. } = verdict {
            accepted.push(first_version);
        }
        snapshot = next;
    }
    assert_eq!(accepted, (1..=final_version).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_pinned_with_if_match_let_exactly_one_through() {
    let system = start().await;
    let id = system.place().await;
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let request = system
                .request(Method::POST, &format!("/orders/{id}/items"))
                .header("if-match", "\"1\"")
                .json(&json!({"sku": format!("SKU-{n}"), "quantity": 1, "unit_price_cents": 100}));
            tokio::spawn(async move { request.send().await.expect("answers").status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("joined"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        9,
        "{statuses:?}"
    );
    let (_, etag, _) = system.get(&format!("/orders/{id}")).await;
    assert_eq!(etag.as_deref(), Some("\"2\""));
}

/// An instance remembers the snapshots it wrote. Another instance changes
/// the order behind its back: the first instance's next commands are still
/// answered truthfully, a stale snapshot costing a retry, never a wrong answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_remembers_an_older_state_still_answers_truthfully() {
    let system = start().await;
    let other = system.another_service().await;
    let id = system.place().await;
    let post = |base_url: &str, path: &str, body: Option<serde_json::Value>| {
        let request = system.http.post(format!("{base_url}/orders/{id}/{path}"));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        system.send(request)
    };
    let parcel = json!({"carrier": "DHL", "tracking_number": "JD1"});

    // This instance remembers "placed"; the other confirms the order and
    // records its stock reserved.
    let (status, _, order) = post(&other.base_url, "confirm", None).await;
    assert_eq!((status, &order["version"]), (200, &json!(2)), "{order}");
    let (status, _, order) = post(&other.base_url, "stock-reserved", None).await;
    assert_eq!((status, &order["version"]), (200, &json!(3)), "{order}");
    // Shipping a placed order is refused, but the order is ready to ship
    // now: the refusal is not answered, the ship is.
    let (status, _, order) = post(&system.base_url, "ship", Some(parcel.clone())).await;
    assert_eq!(
        (status, &order["version"], &order["status"]),
        (200, &json!(4), &json!("shipped")),
        "{order}"
    );

    // The other instance delivers. This one remembers "shipped", on which a
    // delivery is legal: it is appended, judged a conflict, and decided again
    // on the order as it is.
    let (status, _, order) = post(&other.base_url, "deliver", None).await;
    assert_eq!((status, &order["version"]), (200, &json!(5)), "{order}");
    let (status, _, problem) = post(&system.base_url, "deliver", None).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("delivered")),
        "refused for what the order is now: {problem}"
    );
    let (_, _, order) = system.get(&format!("/orders/{id}")).await;
    assert_eq!(
        (&order["version"], &order["status"]),
        (&json!(5), &json!("delivered"))
    );
}
