//! Read your own writes everywhere: a write's `Consistency-Token`, sent with
//! a read of the read model, makes that read see the write.

use order_service::consistency::Token;
use order_service::execute::Position;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{System, place_body, start};

/// Sends a command; returns its answer and its token.
async fn write(
    system: &System,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (Value, String) {
    let mut request = system.request(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answers");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    let token = response.headers()["consistency-token"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    (response.json().await.expect("JSON"), token)
}

/// A read with the token.
async fn read(system: &System, path: &str, token: &str) -> (u16, Value) {
    let (status, _, body) = system
        .send(
            system
                .request(Method::GET, path)
                .header("consistency-token", token),
        )
        .await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_read_with_the_token_of_a_write_shows_it_every_time() {
    let system = start().await;
    for n in 0..200 {
        let mut body = place_body();
        body["customer_id"] = json!(format!("reader-{n}"));
        let (order, token) = write(&system, Method::POST, "/orders", Some(body)).await;
        let (status, page) =
            read(&system, &format!("/orders?customer_id=reader-{n}"), &token).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["orders"][0]["id"], order["id"], "round {n}: {page}");
    }
    // Without a token the answer is still a well-formed page.
    let (status, _, page) = system.get("/orders?customer_id=reader-7").await;
    assert_eq!(status, 200);
    assert!(page["orders"].is_array(), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_read_with_the_last_writes_token_shows_every_event() {
    let system = start().await;
    for n in 0..200 {
        let (order, _) = write(&system, Method::POST, "/orders", Some(place_body())).await;
        let id = order["id"].as_str().expect("an id").to_owned();
        let item = json!({"sku": "PEN-2", "quantity": 1, "unit_price_cents": 250});
        write(
            &system,
            Method::POST,
            &format!("/orders/{id}/items"),
            Some(item),
        )
        .await;
        let (_, token) = write(
            &system,
            Method::POST,
            &format!("/orders/{id}/confirm"),
            None,
        )
        .await;
        let (status, history) = read(&system, &format!("/orders/{id}/events"), &token).await;
        assert_eq!(status, 200, "round {n}: {history}");
        let types: Vec<&str> = history["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["event_type"].as_str())
            .collect();
        assert_eq!(
            types,
            ["OrderPlaced", "ItemAdded", "OrderConfirmed"],
            "round {n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_list_honours_the_token_of_a_reservation() {
    let system = start().await;
    write(&system, Method::PUT, "/inventory/INK-1", Some(json!({}))).await;
    write(
        &system,
        Method::POST,
        "/inventory/INK-1/restock",
        Some(json!({"units": 50})),
    )
    .await;
    for n in 1..=20 {
        let body = json!({"order_id": uuid::Uuid::now_v7(), "units": 1});
        let (_, token) = write(
            &system,
            Method::POST,
            "/inventory/INK-1/reservations",
            Some(body),
        )
        .await;
        let (status, page) = read(&system, "/inventory", &token).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["stock"][0]["reserved"], n, "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_cannot_be_honoured_is_a_400_at_once() {
    let system = start().await;
    let (order, orders_token) = write(&system, Method::POST, "/orders", Some(place_body())).await;
    let (_, stock_token) = write(&system, Method::PUT, "/inventory/CAP-1", Some(json!({}))).await;
    let id = order["id"].as_str().expect("an id");
    let orders_topic = system.topics.events.clone();
    let forged =
        |partition, offset| Token::new(&orders_topic, Position { partition, offset }).encode();
    let cases = [
        ("not a token", "/orders".to_owned(), "abc".to_owned()),
        (
            "another entity's token on a list",
            "/orders".to_owned(),
            stock_token.clone(),
        ),
        (
            "another entity's token on a history",
            format!("/orders/{id}/events"),
            stock_token.clone(),
        ),
        (
            "another entity's token on one order",
            format!("/orders/{id}"),
            stock_token,
        ),
        (
            "an inventory list with an order's token",
            "/inventory".to_owned(),
            orders_token,
        ),
        (
            "an offset from the future",
            "/orders".to_owned(),
            forged(0, 1_000_000_000),
        ),
        (
            "an offset from the future, one order",
            format!("/orders/{id}"),
            forged(0, 1_000_000_000),
        ),
        (
            "a partition the topic does not have",
            "/orders".to_owned(),
            forged(99, 0),
        ),
    ];
    for (what, path, token) in cases {
        let (status, problem) = read(&system, &path, &token).await;
        assert_eq!(status, 400, "{what}: {problem}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {problem}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_no_order_can_reach_is_refused_at_once() {
    let system = start().await;
    let id = system.place().await;
    let (status, _, problem) = system
        .get(&format!("/orders/{id}?min_version=9223372036854775808"))
        .await;
    assert_eq!(status, 400, "{problem}");
}
