//! Guarantee 7: bad input gets a clear 4xx problem and appends nothing.

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::support::{place_body, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_input_is_refused_and_appends_nothing() {
    let system = start().await;
    let id = system.place().await;
    let before = system.appended().await;

    let mut too_many_lines = place_body();
    too_many_lines["items"] = (0..101)
        .map(|i| json!({"sku": format!("SKU-{i}"), "quantity": 1, "unit_price_cents": 1}))
        .collect();
    let with = |field: &str, value: serde_json::Value| {
        let mut body = place_body();
        body[field] = value;
        body
    };
    let item = |quantity: serde_json::Value, price: serde_json::Value, sku: &str| {
        with(
            "items",
            json!([{"sku": sku, "quantity": quantity, "unit_price_cents": price}]),
        )
    };
    let unknown = Uuid::now_v7();
    let json_cases = [
        (
            "unknown field",
            "/orders".to_owned(),
            with("coupon", json!("FREE")),
            422,
        ),
        (
            "wrong type",
            "/orders".to_owned(),
            with("items", json!("many")),
            422,
        ),
        (
            "missing field",
            "/orders".to_owned(),
            json!({"customer_id": "c", "items": []}),
            422,
        ),
        (
            "no items",
            "/orders".to_owned(),
            with("items", json!([])),
            422,
        ),
        ("too many lines", "/orders".to_owned(), too_many_lines, 422),
        (
            "quantity 0",
            "/orders".to_owned(),
            item(json!(0), json!(1), "A"),
            422,
        ),
        (
            "quantity too large",
            "/orders".to_owned(),
            item(json!(10_001), json!(1), "A"),
            422,
        ),
        (
            "negative price",
            "/orders".to_owned(),
            item(json!(1), json!(-5), "A"),
            422,
        ),
        (
            "price too high",
            "/orders".to_owned(),
            item(json!(1), json!(100_000_001), "A"),
            422,
        ),
        (
            "bad sku",
            "/orders".to_owned(),
            item(json!(1), json!(1), "not a sku!"),
            422,
        ),
        (
            "empty customer",
            "/orders".to_owned(),
            with("customer_id", json!("")),
            422,
        ),
        (
            "bad email",
            "/orders".to_owned(),
            with("email", json!("nobody")),
            422,
        ),
        (
            "unknown order",
            format!("/orders/{unknown}/confirm"),
            json!(null),
            404,
        ),
        (
            "not an id",
            "/orders/42/confirm".to_owned(),
            json!(null),
            404,
        ),
        (
            "illegal transition",
            format!("/orders/{id}/deliver"),
            json!(null),
            409,
        ),
        (
            "adding a line at another price",
            format!("/orders/{id}/items"),
            json!({"sku": "BOOK-1", "quantity": 1, "unit_price_cents": 1}),
            409,
        ),
        (
            "a body that is not an object",
            format!("/orders/{id}/items"),
            json!([]),
            422,
        ),
        (
            "ship without a carrier",
            format!("/orders/{id}/ship"),
            json!({"tracking_number": "X"}),
            422,
        ),
    ];
    for (what, path, body, expected) in json_cases {
        let (code, _, problem) = system.post(&path, body).await;
        assert_eq!(code, expected, "{what}: {problem}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {problem}"
        );
    }

    let raw_cases = [
        (
            "malformed JSON",
            "application/json",
            b"{\"customer_id\": ".to_vec(),
            400,
        ),
        (
            "wrong content type",
            "text/plain",
            serde_json::to_vec(&place_body()).expect("json"),
            415,
        ),
        (
            "oversized body",
            "application/json",
            vec![b' '; 65 * 1024],
            413,
        ),
    ];
    for (what, content_type, body, expected) in raw_cases {
        let request = system
            .request(Method::POST, "/orders")
            .header("content-type", content_type)
            .body(body);
        let (code, _, problem) = system.send(request).await;
        assert_eq!(code, expected, "{what}: {problem}");
    }

    let (code, _, problem) = system
        .send(system.request(Method::DELETE, &format!("/orders/{id}/items/NOT-THERE")))
        .await;
    assert_eq!(
        code, 404,
        "removing a line the order does not have: {problem}"
    );

    let header_cases = [
        ("bad If-Match", "if-match", "soon"),
        ("an unquoted If-Match", "if-match", "1"),
        ("bad Idempotency-Key", "idempotency-key", "has spaces in it"),
    ];
    for (what, name, value) in header_cases {
        let request = system
            .request(Method::POST, &format!("/orders/{id}/confirm"))
            .header(name, value);
        let (code, _, problem) = system.send(request).await;
        assert_eq!(code, 400, "{what}: {problem}");
    }
    assert_eq!(
        system
            .send(system.request(Method::GET, "/no/such/route"))
            .await
            .0,
        404
    );
    assert_eq!(
        system.send(system.request(Method::PUT, "/orders")).await.0,
        405
    );

    assert_eq!(
        system.appended().await,
        before,
        "bad input appended nothing"
    );
}
