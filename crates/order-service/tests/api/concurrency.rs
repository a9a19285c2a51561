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
