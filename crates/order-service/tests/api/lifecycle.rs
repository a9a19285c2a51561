//! The whole lifecycle over HTTP, with read-your-writes.

use reqwest::Method;
use serde_json::json;

use crate::support::{place_body, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_goes_from_placed_to_delivered_and_every_read_sees_the_last_write() {
    let system = start().await;
    let response = system
        .request(Method::POST, "/orders")
        .json(&place_body())
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    let order: serde_json::Value = response.json().await.expect("json");
    let id = order["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/orders/{id}"));
    assert_eq!(order["status"], "placed");
    assert_eq!(order["total_cents"], 3000);
    assert_eq!(order["version"], 1);
    assert_eq!(order["customer_id"], "customer-42");

    let steps = [
        (
            Method::POST,
            format!("/orders/{id}/items"),
            json!({"sku": "PEN-2", "quantity": 3, "unit_price_cents": 250}),
            "placed",
        ),
        (
            Method::DELETE,
            format!("/orders/{id}/items/BOOK-1"),
            json!(null),
            "placed",
        ),
        (
            Method::POST,
            format!("/orders/{id}/confirm"),
            json!(null),
            "confirmed",
        ),
        // What the fulfilment workflow records once the stock is held.
        (
            Method::POST,
            format!("/orders/{id}/stock-reserved"),
            json!(null),
            "confirmed",
        ),
        (
            Method::POST,
            format!("/orders/{id}/ship"),
            json!({"carrier": "DHL", "tracking_number": "JD0146"}),
            "shipped",
        ),
        (
            Method::POST,
            format!("/orders/{id}/deliver"),
            json!(null),
            "delivered",
        ),
    ];
    for (version, (method, path, body, status)) in (2u64..).zip(steps) {
        let request = system.request(method.clone(), &path);
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        let (code, etag, order) = system.send(request).await;
        assert_eq!(code, 200, "{method} {path}: {order}");
        assert_eq!(order["status"], status);
        assert_eq!(order["version"], version);
        assert_eq!(etag.as_deref(), Some(format!("\"{version}\"").as_str()));

        // Read-your-writes: the very next read shows this version.
        let (code, etag, read) = system.get(&format!("/orders/{id}")).await;
        assert_eq!(code, 200);
        assert_eq!(read, order, "the read returns what the write answered");
        assert_eq!(etag.as_deref(), Some(format!("\"{version}\"").as_str()));
    }
    let (_, _, delivered) = system.get(&format!("/orders/{id}")).await;
    assert_eq!(
        delivered["items"],
        json!([{"sku": "PEN-2", "quantity": 3, "unit_price_cents": 250}])
    );
    assert_eq!(delivered["total_cents"], 750);
    assert_eq!(delivered["carrier"], "DHL");

    let (code, _, problem) = system
        .post(
            &format!("/orders/{id}/cancel"),
            json!({"reason": "too late"}),
        )
        .await;
    assert_eq!(code, 409, "a delivered order is final: {problem}");
    assert_eq!(
        problem["detail"],
        "cannot cancel an order that is delivered: it is final"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_order_can_be_cancelled_and_then_not_shipped() {
    let system = start().await;
    let id = system.place().await;
    assert_eq!(
        system
            .post(&format!("/orders/{id}/confirm"), json!(null))
            .await
            .0,
        200
    );

    let (code, _, order) = system
        .post(
            &format!("/orders/{id}/cancel"),
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancel_reason"], "changed my mind");

    let (code, _, _) = system
        .post(
            &format!("/orders/{id}/ship"),
            json!({"carrier": "DHL", "tracking_number": "X1"}),
        )
        .await;
    assert_eq!(code, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_version_waits_for_a_version_and_gives_up_with_a_504() {
    let system = start().await;
    let id = system.place().await;
    let (code, etag, _) = system.get(&format!("/orders/{id}?min_version=1")).await;
    assert_eq!((code, etag.as_deref()), (200, Some("\"1\"")));
    let (code, _, problem) = system.get(&format!("/orders/{id}?min_version=9")).await;
    assert_eq!(code, 504, "{problem}");
}
