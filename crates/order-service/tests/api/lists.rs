//! `GET /orders` and `GET /orders/{id}/events`, served from the read model.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{System, place_body, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_listed_filtered_paged_and_their_history_is_shown() {
    let system = start().await;
    let customer = format!("list-{}", Uuid::now_v7().simple());
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut body = place_body();
        body["customer_id"] = json!(customer);
        let (status, _, order) = system.post("/orders", body).await;
        assert_eq!(status, 201, "{order}");
        ids.push(order["id"].as_str().expect("an id").to_owned());
    }
    let (status, _, _) = system
        .post(&format!("/orders/{}/confirm", ids[1]), json!(null))
        .await;
    assert_eq!(status, 200);
    ids.sort();

    let all = format!("/orders?customer_id={customer}");
    let listed = wait_for(&system, &all, |page| {
        page["orders"]
            .as_array()
            .is_some_and(|o| o.len() == 3 && o.iter().any(|order| order["status"] == "confirmed"))
    })
    .await;
    let listed_ids: Vec<&str> = listed["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(listed_ids, ids, "oldest id first");
    assert!(listed.get("next_cursor").is_none(), "one page: {listed}");

    let (status, _, confirmed) = system.get(&format!("{all}&status=confirmed")).await;
    assert_eq!(status, 200);
    assert_eq!(confirmed["orders"].as_array().map(Vec::len), Some(1));
    assert_eq!(confirmed["orders"][0]["id"], ids[1].as_str());
    assert_eq!(confirmed["orders"][0]["version"], 2);

    let (_, _, first) = system.get(&format!("{all}&limit=2")).await;
    assert_eq!(first["orders"].as_array().map(Vec::len), Some(2));
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let (_, _, second) = system.get(&format!("{all}&limit=2&cursor={cursor}")).await;
    assert_eq!(second["orders"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["orders"][0]["id"], ids[2].as_str());
    assert!(second.get("next_cursor").is_none());

    let (status, _, history) = system.get(&format!("/orders/{}/events", ids[1])).await;
    assert_eq!(status, 200);
    let events = history["events"].as_array().expect("events");
    let kinds: Vec<(&str, i64)> = events
        .iter()
        .filter_map(|e| Some((e["event_type"].as_str()?, e["version"].as_i64()?)))
        .collect();
    assert_eq!(kinds, [("OrderPlaced", 1), ("OrderConfirmed", 2)]);

    for (query, why) in [
        ("limit=0", "limit below 1"),
        ("limit=101", "limit above 100"),
        ("status=lost", "unknown status"),
        ("cursor=nonsense", "a cursor this API never gave"),
        ("colour=red", "unknown parameter"),
    ] {
        let (status, _, problem) = system.get(&format!("/orders?{query}")).await;
        assert_eq!(status, 400, "{why}: {problem}");
    }
    let (status, _, _) = system
        .get(&format!("/orders/{}/events", Uuid::now_v7()))
        .await;
    assert_eq!(status, 404);
}

/// Polls `path` until `done` holds for its JSON body (the read model trails
/// the write by a batch).
async fn wait_for(system: &System, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    e2e::wait::until(Duration::from_secs(30), async || {
        let (status, _, body) = system.get(path).await;
        if status == 200 && done(&body) {
            Ok(body)
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await
    .unwrap_or_else(|last| panic!("{path} never showed it: {last}"))
}
