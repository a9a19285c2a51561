//! The fulfilment workflow against a real broker, a real PostgreSQL, a real
//! projector and order-service (in this process, on topics and a database of
//! this test's own): scarce stock shared by competing orders, and customers
//! cancelling while their reservations are in flight.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use e2e::wait::eventually;
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

/// The services and the workflow, started for one test.
struct System {
    base_url: String,
    /// The workflow's health and metrics.
    workflow_url: String,
    http: reqwest::Client,
    stop: watch::Sender<bool>,
    /// The projector's stores, removed when the test ends.
    state_dir: std::path::PathBuf,
}

impl System {
    async fn start() -> Self {
        let run = Uuid::now_v7().simple().to_string();
        let prefix = format!("test-{run}");
        let state_dir = std::env::temp_dir().join(format!("fulfilment-{run}"));
        let database_url = e2e::postgres::fresh_database(&format!("test_{run}"))
            .await
            .expect("a test database");
        let projector = projector::Config::parse_from([
            "projector",
            &format!("--topic-prefix={prefix}"),
            "--partitions=3",
            &format!("--instance-id=projector-{run}"),
            &format!(
                "--state-dir={}",
                std::env::temp_dir()
                    .join(format!("fulfilment-{run}"))
                    .display()
            ),
            "--http-addr=127.0.0.1:0",
            "--commit-interval-ms=20",
            &format!("--database-url={database_url}"),
        ]);
        let projector = projector::Application::build(projector)
            .await
            .expect("the projector starts");
        let projector_url = format!("http://{}", projector.local_addr().expect("bound"));
        tokio::spawn(projector.run_until_stopped(std::future::pending()));
        let service = order_service::Config::parse_from([
            "order-service",
            &format!("--topic-prefix={prefix}"),
            "--partitions=3",
            &format!("--instance-id=order-service-{run}"),
            &format!("--projector-url={projector_url}"),
            "--http-addr=127.0.0.1:0",
            "--conflict-retries=50",
            &format!("--database-url={database_url}"),
        ]);
        let service = order_service::Application::build(service)
            .await
            .expect("order-service starts");
        let base_url = format!("http://{}", service.local_addr().expect("bound"));
        tokio::spawn(service.run_until_stopped(std::future::pending()));
        let config = fulfilment::Config::parse_from([
            "fulfilment",
            &format!("--topic-prefix={prefix}"),
            "--partitions=3",
            &format!("--instance-id=fulfilment-{run}"),
            &format!("--order-service-url={base_url}"),
            "--http-addr=127.0.0.1:0",
        ]);
        let workflow = fulfilment::Application::build(config)
            .await
            .expect("the workflow starts");
        let workflow_url = format!("http://{}", workflow.local_addr().expect("bound"));
        let (stop, mut stopping) = watch::channel(false);
        tokio::spawn(workflow.run_until_stopped(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }));
        let system = Self {
            base_url,
            workflow_url,
            http: reqwest::Client::new(),
            stop,
            state_dir,
        };
        eventually(
            "order-service ready",
            Duration::from_secs(300),
            async || {
                let ready = system
                    .http
                    .get(format!("{}/readyz", system.base_url))
                    .send()
                    .await;
                ready.ok()?.status().is_success().then_some(())
            },
        )
        .await;
        system
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("order-service answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    async fn stock(&self, sku: &str, units: u64) {
        let (status, body) = self
            .send(
                reqwest::Method::PUT,
                &format!("/inventory/{sku}"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                &format!("/inventory/{sku}/restock"),
                Some(json!({ "units": units })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Places and confirms an order of `lines` (sku, units); returns its id.
    async fn confirmed_order(&self, lines: &[(String, u64)]) -> String {
        let items: Vec<Value> = lines
            .iter()
            .map(|(sku, units)| json!({ "sku": sku, "quantity": units, "unit_price_cents": 100 }))
            .collect();
        let body = json!({ "customer_id": "c-1", "email": "c@example.com", "items": items });
        let (status, order) = self
            .send(reqwest::Method::POST, "/orders", Some(body))
            .await;
        assert_eq!(status, 201, "{order}");
        let id = order["id"].as_str().expect("an id").to_owned();
        let (status, order) = self
            .send(
                reqwest::Method::POST,
                &format!("/orders/{id}/confirm"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{order}");
        id
    }

    async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await.1
    }

    /// Waits until the workflow has settled every order: stock reserved, or
    /// cancelled.
    async fn settled(&self, ids: &[String]) -> BTreeMap<String, Value> {
        eventually(
            "every order settled by the workflow",
            Duration::from_secs(90),
            async || {
                let mut orders = BTreeMap::new();
                for id in ids {
                    let order = self.get(&format!("/orders/{id}")).await;
                    let settled = order["stock_reserved"] == true || order["status"] == "cancelled";
                    if !settled {
                        return None;
                    }
                    orders.insert(id.clone(), order);
                }
                Some(orders)
            },
        )
        .await
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// Every SKU's reservations: order id to units.
async fn reservations(system: &System, skus: &[String]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut all = BTreeMap::new();
    for sku in skus {
        let stock = system.get(&format!("/inventory/{sku}")).await;
        let counts = ["available", "reserved", "shipped"].map(|f| stock[f].as_u64().unwrap_or(0));
        assert_eq!(
            stock["received"].as_u64(),
            Some(counts.iter().sum()),
            "received = available + reserved + shipped: {stock}"
        );
        let held = stock["reservations"]
            .as_array()
            .expect("reservations")
            .iter()
            .map(|r| {
                let order = r["order_id"].as_str().unwrap_or_default().to_owned();
                (order, r["units"].as_u64().unwrap_or(0))
            })
            .collect();
        all.insert(sku.clone(), held);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scarce_stock_goes_to_some_orders_whole_and_the_rest_are_cancelled_holding_nothing() {
    let system = System::start().await;
    let skus: Vec<String> = (0..3).map(|n| format!("SCARCE-{n}")).collect();
    for sku in &skus {
        system.stock(sku, 10).await;
    }
    // 30 orders of one or two lines, 1 to 3 units each: about twice the stock.
    let mut orders: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    let placing: Vec<_> = (0..30u64)
        .map(|n| {
            let mut lines = vec![(skus[(n % 3) as usize].clone(), 1 + n % 3)];
            if n % 2 == 0 {
                lines.push((skus[((n + 1) % 3) as usize].clone(), 1 + (n / 2) % 3));
            }
            lines
        })
        .collect();
    for lines in placing {
        let id = system.confirmed_order(&lines).await;
        orders.insert(id, lines);
    }
    let ids: Vec<String> = orders.keys().cloned().collect();
    let settled = system.settled(&ids).await;

    let held = reservations(&system, &skus).await;
    let (mut reserved, mut cancelled) = (0, 0);
    for (id, order) in &settled {
        let holding: BTreeMap<&String, u64> = held
            .iter()
            .filter_map(|(sku, by_order)| Some((sku, *by_order.get(id)?)))
            .collect();
        if order["stock_reserved"] == true {
            reserved += 1;
            let expected: BTreeMap<&String, u64> = orders[id]
                .iter()
                .map(|(sku, units)| (sku, *units))
                .collect();
            assert_eq!(holding, expected, "{id} holds exactly its lines");
        } else {
            cancelled += 1;
            assert!(
                order["cancel_reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("out of stock: SCARCE-")),
                "{order}"
            );
            assert!(
                holding.is_empty(),
                "{id} was cancelled, yet holds {holding:?}"
            );
        }
    }
    assert!(
        reserved > 0 && cancelled > 0,
        "scarcity was exercised: {reserved} reserved, {cancelled} cancelled"
    );

    // A reserved order ships: its units leave the inventory.
    let (id, _) = settled
        .iter()
        .find(|(_, order)| order["stock_reserved"] == true)
        .expect("a reserved order");
    let parcel = json!({ "carrier": "DHL", "tracking_number": "T-1" });
    let (status, shipped) = system
        .send(
            reqwest::Method::POST,
            &format!("/orders/{id}/ship"),
            Some(parcel),
        )
        .await;
    assert_eq!(status, 200, "{shipped}");
    let units: u64 = orders[id].iter().map(|(_, units)| units).sum();
    eventually(
        "its reservation committed",
        Duration::from_secs(30),
        async || {
            let mut shipped = 0;
            for sku in &skus {
                shipped += system.get(&format!("/inventory/{sku}")).await["shipped"].as_u64()?;
            }
            (shipped == units).then_some(())
        },
    )
    .await;

    // What the workflow did, as its /metrics tells it.
    let metrics = eventually(
        "the workflow's lag at 0",
        Duration::from_secs(30),
        async || {
            let metrics = e2e::metrics::scrape(&system.http, &system.workflow_url)
                .await
                .ok()?;
            (metrics
                .sample("fulfilment_lag", &[("partition", "0")])
                .is_some()
                && metrics.sum("fulfilment_lag") == 0.0)
                .then_some(metrics)
        },
    )
    .await;
    let count = |name: &str, labels: &[(&str, &str)]| metrics.sample(name, labels).unwrap_or(0.0);
    assert!(count("fulfilment_facts_total", &[("plan", "reserve")]) >= 30.0);
    assert!(count("fulfilment_facts_total", &[("plan", "commit")]) >= 1.0);
    assert!(
        count(
            "fulfilment_steps_total",
            &[("step", "reserved"), ("status", "200")]
        ) >= f64::from(reserved)
    );
    assert!(
        count(
            "fulfilment_steps_total",
            &[("step", "cancel"), ("status", "200")]
        ) >= f64::from(cancelled)
    );
    assert!(
        metrics
            .observations("fulfilment_step_seconds", &[("step", "commit")])
            .is_some_and(|n| n >= 1.0)
    );
    let missing = system
        .http
        .get(format!("{}/nothing-here", system.workflow_url))
        .send()
        .await
        .expect("the workflow answers");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cancelled_while_its_stock_is_being_reserved_keeps_nothing() {
    let system = System::start().await;
    let sku = "PLENTY-1".to_owned();
    system.stock(&sku, 1_000).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let id = system.confirmed_order(&[(sku.clone(), 2)]).await;
        let reason = json!({ "reason": "changed my mind" });
        let (status, order) = system
            .send(
                reqwest::Method::POST,
                &format!("/orders/{id}/cancel"),
                Some(reason),
            )
            .await;
        assert_eq!(status, 200, "{order}");
        ids.push(id);
    }
    // The workflow reserves for every confirmed order (the inventory does
    // not know it was cancelled), finds the order cancelled when it records
    // the reservation, and gives the units back.
    eventually(
        "every order's units reserved, then released",
        Duration::from_secs(60),
        async || {
            let history = system.get(&format!("/inventory/{sku}/events")).await;
            let events = history["events"].as_array()?;
            let count = |event_type: &str, id: &str| {
                events
                    .iter()
                    .filter(|e| e["event_type"] == event_type && e["data"]["order_id"] == id)
                    .count()
            };
            ids.iter()
                .all(|id| count("StockReserved", id) == 1 && count("ReservationReleased", id) == 1)
                .then_some(())
        },
    )
    .await;
    let stock = system.get(&format!("/inventory/{sku}")).await;
    assert_eq!(
        (&stock["reserved"], &stock["available"]),
        (&json!(0), &json!(1_000)),
        "{stock}"
    );
    for id in &ids {
        let order = system.get(&format!("/orders/{id}")).await;
        assert_eq!(order["status"], "cancelled", "{order}");
    }
}
