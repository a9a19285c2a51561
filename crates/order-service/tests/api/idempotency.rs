//! `Idempotency-Key` and `If-Match`.

use reqwest::Method;
use serde_json::json;

use crate::support::{place_body, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_key_gets_the_first_answer_and_appends_nothing() {
    let system = start().await;
    let place = || {
        system
            .request(Method::POST, "/orders")
            .header("idempotency-key", "order-7")
            .json(&place_body())
    };
    let first = system.send(place()).await;
    assert_eq!(first.0, 201);
    let appended = system.appended().await;

    let retry = system.send(place()).await;
    assert_eq!(retry, first, "the same status, ETag and body");
    assert_eq!(
        system.appended().await,
        appended,
        "the retry appended nothing"
    );

    let id = first.2["id"].as_str().expect("id");
    let confirm = || {
        system
            .request(Method::POST, &format!("/orders/{id}/confirm"))
            .header("idempotency-key", "confirm-7")
    };
    let confirmed = system.send(confirm()).await;
    assert_eq!(confirmed.0, 200);
    let appended = system.appended().await;
    assert_eq!(system.send(confirm()).await, confirmed);
    assert_eq!(
        system.appended().await,
        appended,
        "the retry appended nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_with_another_body_is_a_422() {
    let system = start().await;
    let key = ("idempotency-key", "order-8");
    let first = system
        .send(
            system
                .request(Method::POST, "/orders")
                .header(key.0, key.1)
                .json(&place_body()),
        )
        .await;
    assert_eq!(first.0, 201);
    let mut other = place_body();
    other["customer_id"] = json!("someone-else");
    let (code, _, problem) = system
        .send(
            system
                .request(Method::POST, "/orders")
                .header(key.0, key.1)
                .json(&other),
        )
        .await;
    assert_eq!(code, 422, "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_twice_at_once_appends_once() {
    let system = start().await;
    let appended = system.appended().await;
    let send = || {
        let request = system
            .request(Method::POST, "/orders")
            .header("idempotency-key", "order-9")
            .json(&place_body());
        tokio::spawn(async move { request.send().await.expect("answers").status().as_u16() })
    };
    let (a, b) = (send(), send());
    let mut statuses = [a.await.expect("joined"), b.await.expect("joined")];
    statuses.sort();
    assert!(
        statuses == [201, 201] || statuses == [201, 409],
        "one runs, the other waits or replays: {statuses:?}"
    );
    assert_eq!(system.appended().await, appended + 1, "one append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_with_a_stale_version_is_a_412_and_with_the_current_one_succeeds() {
    let system = start().await;
    let id = system.place().await;
    let confirm = |etag: &str| {
        system
            .request(Method::POST, &format!("/orders/{id}/confirm"))
            .header("if-match", etag)
    };
    let (code, _, problem) = system.send(confirm("\"7\"")).await;
    assert_eq!(code, 412, "{problem}");
    assert_eq!(problem["version"], 1);
    let (code, etag, _) = system.send(confirm("\"1\"")).await;
    assert_eq!((code, etag.as_deref()), (200, Some("\"2\"")));
}
