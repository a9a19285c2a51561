//! One hot entity: many valid commands at once. Within one instance they
//! take turns, so every one is accepted and answered with the state after
//! it; across two instances only the other instance's writes can conflict.

use std::collections::{BTreeMap, BTreeSet};

use e2e::fold::fold_log;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{System, start};

const COMMANDS: usize = 40;

/// Sends one add-item per SKU at once, each to `base_urls[n % len]`; the
/// answers in SKU order.
async fn add_all_at_once(system: &System, base_urls: &[&str], id: &str) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = (0..COMMANDS)
        .map(|n| {
            let url = format!("{}/orders/{id}/items", base_urls[n % base_urls.len()]);
            let request = system
                .http
                .request(Method::POST, url)
                .json(&json!({"sku": format!("HOT-{n}"), "quantity": 1, "unit_price_cents": 100}));
            tokio::spawn(async move {
                let response = request.send().await.expect("answers");
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap_or_default())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("joined"));
    }
    answers
}

/// The order's SKUs at every version, folded from the log.
async fn skus_by_version(system: &System) -> BTreeMap<u64, BTreeSet<String>> {
    let fold = fold_log(system.kafka(), &system.topics.events)
        .await
        .expect("readable");
    fold.by_version
        .into_iter()
        .filter_map(|((_, version), snapshot)| {
            let order = snapshot.state?;
            Some((
                version,
                order
                    .lines
                    .iter()
                    .map(|l| l.sku.as_str().to_owned())
                    .collect(),
            ))
        })
        .collect()
}

fn answered_skus(order: &Value) -> BTreeSet<String> {
    order["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["sku"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_commands_at_once_on_one_order_through_one_instance_are_all_accepted() {
    let system = start().await;
    let id = system.place().await;

    let answers = add_all_at_once(&system, &[&system.base_url], &id).await;

    let log = skus_by_version(&system).await;
    let mut versions = BTreeSet::new();
    for (n, (status, order)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "add {n} is accepted: {order}");
        let version = order["version"].as_u64().expect("a version");
        assert!(
            versions.insert(version),
            "two answers claim version {version}"
        );
        let skus = answered_skus(order);
        assert!(
            skus.contains(&format!("HOT-{n}")),
            "the answer holds its own line"
        );
        assert_eq!(
            Some(&skus),
            log.get(&version),
            "the answer is the order as the log has it at version {version}"
        );
    }
    let placed_at = 1;
    assert_eq!(
        versions,
        (placed_at + 1..=placed_at + COMMANDS as u64).collect(),
        "the versions are gapless"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_two_instances_only_the_other_instances_writes_conflict() {
    let system = start().await;
    let other = system.another_service().await;
    let id = system.place().await;

    let answers = add_all_at_once(&system, &[&system.base_url, &other.base_url], &id).await;

    let log = skus_by_version(&system).await;
    let (_, _, order) = system.get(&format!("/orders/{id}")).await;
    let final_skus = answered_skus(&order);
    let mut accepted = 0;
    for (n, (status, answer)) in answers.iter().enumerate() {
        let sku = format!("HOT-{n}");
        match status {
            200 => {
                accepted += 1;
                let version = answer["version"].as_u64().expect("a version");
                assert_eq!(Some(&answered_skus(answer)), log.get(&version), "{answer}");
                assert!(final_skus.contains(&sku), "an accepted add is in the order");
            }
            409 => {
                assert!(
                    answer["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("kept changing")),
                    "a 409 says the order kept changing: {answer}"
                );
                assert!(!final_skus.contains(&sku), "a refused add left no trace");
            }
            other => panic!("add {n}: unexpected {other}: {answer}"),
        }
    }
    assert!(
        accepted * 10 >= COMMANDS * 9,
        "at least 90 % accepted: {accepted} of {COMMANDS}"
    );
}
