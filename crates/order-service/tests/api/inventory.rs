//! The inventory through the same generic write path as orders: a lifecycle
//! with read-your-writes, bad input, contention for scarce stock, and
//! idempotency.

use std::collections::BTreeSet;
use std::time::Duration;

use domain::aggregate::{CommandBatch, Snapshot, Verdict};
use domain::inventory::{InventoryAggregate, InventoryEvent, Stock};
use e2e::wait::eventually;
use event_store::read_committed_to_end;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{System, start};

/// Creates stock of `sku` with `units` on hand.
async fn stock_of(system: &System, sku: &str, units: u64) {
    let (status, _, body) = system.put(&format!("/inventory/{sku}"), json!({})).await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = system
        .post(
            &format!("/inventory/{sku}/restock"),
            json!({ "units": units }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_is_created_restocked_reserved_released_and_committed() {
    let system = start().await;
    let response = system
        .request(Method::PUT, "/inventory/BOOK-1")
        .json(&json!({ "low_stock_threshold": 5 }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/inventory/BOOK-1");
    assert_eq!(response.headers()["etag"], "\"1\"");

    let restocked = system
        .post("/inventory/BOOK-1/restock", json!({ "units": 30 }))
        .await;
    assert_eq!((restocked.0, restocked.1.as_deref()), (200, Some("\"2\"")));
    assert_eq!(restocked.2["available"], 30);

    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let (status, _, stock) = system
        .post(
            "/inventory/BOOK-1/reservations",
            json!({ "order_id": first, "units": 5 }),
        )
        .await;
    assert_eq!(status, 200, "{stock}");
    assert_eq!(
        (&stock["available"], &stock["reserved"]),
        (&json!(25), &json!(5))
    );
    assert_eq!(
        stock["reservations"],
        json!([{ "order_id": first, "units": 5 }])
    );
    let (status, _, _) = system
        .post(
            "/inventory/BOOK-1/reservations",
            json!({ "order_id": second, "units": 3 }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, stock) = system
        .post(
            &format!("/inventory/BOOK-1/reservations/{first}/commit"),
            json!(null),
        )
        .await;
    assert_eq!(status, 200, "{stock}");
    let (status, _, stock_after_release) = system
        .delete(&format!("/inventory/BOOK-1/reservations/{second}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(stock["shipped"], 5);

    // Read your writes: the answer of the last command is the state now.
    let (status, etag, now) = system.get("/inventory/BOOK-1").await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"6\"")));
    assert_eq!(now, stock_after_release);
    for (field, value) in [
        ("received", 30),
        ("available", 25),
        ("reserved", 0),
        ("shipped", 5),
        ("low_stock_threshold", 5),
    ] {
        assert_eq!(now[field], value, "{field}: {now}");
    }

    // The read model has the same stock and its whole history.
    let listed = eventually(
        "the stock in the list",
        Duration::from_secs(20),
        async || {
            let (_, _, page) = system.get("/inventory").await;
            let stock = page["stock"].as_array()?.first()?.clone();
            (stock["version"] == 6).then_some(stock)
        },
    )
    .await;
    assert_eq!(listed, now);
    let (status, _, history) = system.get("/inventory/BOOK-1/events").await;
    assert_eq!(status, 200);
    let types: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "StockCreated",
            "StockReceived",
            "StockReserved",
            "StockReserved",
            "ReservationCommitted",
            "ReservationReleased"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_is_listed_in_sku_order_page_by_page() {
    let system = start().await;
    let skus: Vec<String> = (0..5).map(|n| format!("SKU-{n}")).collect();
    for sku in skus.iter().rev() {
        stock_of(&system, sku, 1).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    eventually(
        "all five in the model",
        Duration::from_secs(20),
        async || {
            let (_, _, page) = system.get("/inventory?limit=100").await;
            (page["stock"].as_array()?.len() == 5).then_some(())
        },
    )
    .await;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/inventory?limit=2&cursor={cursor}"),
            None => "/inventory?limit=2".to_owned(),
        };
        let (status, _, page) = system.get(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["stock"]
                .as_array()
                .expect("stock")
                .iter()
                .map(|s| s["sku"].as_str().unwrap_or_default().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, skus);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inventory_input_is_refused_and_appends_nothing() {
    let system = start().await;
    stock_of(&system, "PEN-1", 3).await;
    let order = Uuid::now_v7();
    let before = system.appended_to_inventory().await;

    let cases: Vec<(&str, Method, String, Option<Value>, u16)> = vec![
        (
            "a SKU with a space",
            Method::PUT,
            "/inventory/a%20b".into(),
            Some(json!({})),
            422,
        ),
        (
            "stock that exists",
            Method::PUT,
            "/inventory/PEN-1".into(),
            Some(json!({})),
            409,
        ),
        (
            "a threshold too high",
            Method::PUT,
            "/inventory/PEN-2".into(),
            Some(json!({ "low_stock_threshold": 2_000_000_000u64 })),
            422,
        ),
        (
            "an unknown field",
            Method::PUT,
            "/inventory/PEN-2".into(),
            Some(json!({ "colour": "red" })),
            422,
        ),
        (
            "no units",
            Method::POST,
            "/inventory/PEN-1/restock".into(),
            Some(json!({ "units": 0 })),
            422,
        ),
        (
            "units as text",
            Method::POST,
            "/inventory/PEN-1/restock".into(),
            Some(json!({ "units": "many" })),
            422,
        ),
        (
            "stock never created",
            Method::POST,
            "/inventory/NOPE/restock".into(),
            Some(json!({ "units": 1 })),
            404,
        ),
        (
            "more than available",
            Method::POST,
            "/inventory/PEN-1/reservations".into(),
            Some(json!({ "order_id": order, "units": 4 })),
            409,
        ),
        (
            "an order id that is no UUID",
            Method::POST,
            "/inventory/PEN-1/reservations".into(),
            Some(json!({ "order_id": "o-1", "units": 1 })),
            422,
        ),
        (
            "releasing what is not reserved",
            Method::DELETE,
            format!("/inventory/PEN-1/reservations/{order}"),
            None,
            409,
        ),
        (
            "committing what is not reserved",
            Method::POST,
            format!("/inventory/PEN-1/reservations/{order}/commit"),
            None,
            409,
        ),
        (
            "a reservation path with no order id",
            Method::DELETE,
            "/inventory/PEN-1/reservations/o-1".into(),
            None,
            404,
        ),
        (
            "a stale If-Match",
            Method::POST,
            "/inventory/PEN-1/restock".into(),
            Some(json!({ "units": 1 })),
            412,
        ),
        (
            "a bad page size",
            Method::GET,
            "/inventory?limit=0".into(),
            None,
            400,
        ),
        (
            "a forged cursor",
            Method::GET,
            "/inventory?cursor=zz".into(),
            None,
            400,
        ),
        (
            "an unknown parameter",
            Method::GET,
            "/inventory?sort=sku".into(),
            None,
            400,
        ),
    ];
    for (what, method, path, body, expected) in cases {
        let mut request = system.request(method, &path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if what == "a stale If-Match" {
            request = request.header("if-match", "\"1\"");
        }
        let (status, _, problem) = system.send(request).await;
        assert_eq!(status, expected, "{what}: {problem}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {problem}"
        );
    }
    let (status, _, problem) = system
        .send(
            system
                .request(Method::POST, "/inventory/PEN-1/restock")
                .header("content-type", "text/plain")
                .body("units=1"),
        )
        .await;
    assert_eq!(status, 415, "{problem}");

    assert_eq!(
        system.appended_to_inventory().await,
        before,
        "nothing appended"
    );
    let (_, etag, stock) = system.get("/inventory/PEN-1").await;
    assert_eq!(
        (etag.as_deref(), &stock["available"]),
        (Some("\"2\""), &json!(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reservations_race_for_twenty_units_and_exactly_twenty_win() {
    let system = start().await;
    stock_of(&system, "SCARCE", 20).await;

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let order = Uuid::now_v7();
            let request = system
                .request(Method::POST, "/inventory/SCARCE/reservations")
                .json(&json!({ "order_id": order, "units": 1 }));
            tokio::spawn(async move {
                let response = request.send().await.expect("answers");
                let status = response.status().as_u16();
                (
                    order,
                    status,
                    response.json::<Value>().await.unwrap_or_default(),
                )
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("joined"));
    }

    let mut winners = BTreeSet::new();
    let mut versions = BTreeSet::new();
    for (order, status, body) in &answers {
        match status {
            200 => {
                // Truthful: the answer is the state after this reservation.
                assert!(
                    body["reservations"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|r| r["order_id"] == order.to_string())),
                    "a 200 holds its own reservation: {body}"
                );
                assert!(versions.insert(body["version"].as_u64().expect("a version")));
                winners.insert(*order);
            }
            409 => assert!(
                body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("available")),
                "a refusal says why: {body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 20, "exactly the units there were");
    // Versions 3..=22: one per accepted reservation, no gaps.
    assert_eq!(versions, (3..=22).collect::<BTreeSet<u64>>());

    let (_, _, stock) = system.get("/inventory/SCARCE").await;
    assert_eq!(
        (&stock["available"], &stock["reserved"], &stock["version"]),
        (&json!(0), &json!(20), &json!(22))
    );

    // The log agrees: its fold holds exactly the winners' reservations.
    let records = read_committed_to_end(system.kafka(), &system.inventory_topics().events)
        .await
        .expect("readable");
    let mut snapshot = Snapshot::<Option<Stock>>::default();
    let mut accepted = 0;
    for record in records {
        let batch = CommandBatch::<InventoryEvent>::decode(
            record.payload.as_deref().unwrap_or_default(),
            "inventory",
        )
        .expect("valid batches only");
        let (next, verdict) = snapshot.apply::<InventoryAggregate>(&batch);
        accepted += u64::from(matches!(verdict, Verdict::Accepted { .. }));
        snapshot = next;
    }
    assert_eq!(accepted, 22, "create, restock and 20 reservations");
    let folded = snapshot.state.expect("stock");
    assert_eq!(
        folded.reservations.keys().copied().collect::<BTreeSet<_>>(),
        winners
    );
    assert_eq!(
        folded.received,
        folded.available + folded.reserved() + folded.shipped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_reservation_with_its_key_reserves_once() {
    let system = start().await;
    stock_of(&system, "KEYED", 10).await;
    let body = json!({ "order_id": Uuid::now_v7(), "units": 4 });
    let reserve = || {
        system
            .request(Method::POST, "/inventory/KEYED/reservations")
            .header("idempotency-key", "reserve-once")
            .json(&body)
    };
    let first = system.send(reserve()).await;
    let again = system.send(reserve()).await;
    assert_eq!(first.0, 200, "{}", first.2);
    assert_eq!(again, first, "the retry gets the first answer");
    let before = system.appended_to_inventory().await;
    let third = system.send(reserve()).await;
    assert_eq!(third, first);
    assert_eq!(
        system.appended_to_inventory().await,
        before,
        "a replay appends nothing"
    );
    let (_, _, stock) = system.get("/inventory/KEYED").await;
    assert_eq!(
        (&stock["available"], &stock["reserved"]),
        (&json!(6), &json!(4))
    );

    // The same key on another body is a mistake, said so.
    let (status, _, problem) = system
        .send(
            system
                .request(Method::POST, "/inventory/KEYED/reservations")
                .header("idempotency-key", "reserve-once")
                .json(&json!({ "order_id": Uuid::now_v7(), "units": 1 })),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
}
