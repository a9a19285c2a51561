//! Orders over HTTP. [`drive`]: one order's lifecycle after another (place,
//! add an item, confirm, ship, deliver; every fourth order, or one in
//! `--cancel-every`, is cancelled after confirming instead), so every status
//! is reached. [`drive_hot`]: every worker adds to the same order, the
//! hot-entity case.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::Pacer;
use crate::report::Report;
use crate::stop::Stop;

/// The API's address and a connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    skus: Skus,
    /// Every this many orders, one is cancelled after confirming instead of shipped.
    cancel_every: u64,
}

/// Which SKUs an order holds: the orders, numbered across all workers,
/// take the SKUs in turn.
#[derive(Clone)]
struct Skus {
    count: u64,
    orders: Arc<AtomicU64>,
}

impl Skus {
    /// The SKUs of the next order: the one it is placed with, and the one added.
    fn next(&self) -> (String, String) {
        let k = self.orders.fetch_add(1, Ordering::Relaxed) % self.count;
        (format!("BOOK-{}", 1 + k), format!("PEN-{}", 2 + k))
    }
}

impl Client {
    pub fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.trim_end_matches('/').to_owned(),
            skus: Skus {
                count: 1,
                orders: Arc::default(),
            },
            cancel_every: 4,
        }
    }

    /// One order in `every` is cancelled after confirming (see `--cancel-every`).
    pub fn cancelling_every(mut self, every: u64) -> Self {
        self.cancel_every = every.max(1);
        self
    }

    /// Orders spread over `count` SKUs (see `--skus`).
    pub fn spread_over(mut self, count: u64) -> Self {
        self.skus.count = count.max(1);
        self
    }

    /// Sends one command; returns the status (or the error kind) and the body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (String, Option<Value>) {
        let request = self.http.request(method, format!("{}{path}", self.url));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16().to_string();
                (status, response.json().await.ok())
            }
            Err(error) if error.is_timeout() => ("timeout".into(), None),
            Err(error) if error.is_connect() => ("connect error".into(), None),
            Err(_) => ("transport error".into(), None),
        }
    }
}

/// Runs lifecycles until it is time to stop, pacing request starts.
pub async fn drive(
    client: Client,
    pacer: Pacer,
    stop: Stop,
    report: Arc<Mutex<Report>>,
) -> anyhow::Result<()> {
    let mut next_start = Instant::now();
    let (mut n, mut orders) = (0u64, 0u64);
    while !stop.is_due() {
        let mut order_id = String::new();
        let (book, pen) = client.skus.next();
        orders += 1;
        let cancelled = orders % client.cancel_every == 0;
        for step in 0..5 {
            stop.sleep_until(next_start).await;
            if stop.is_due() {
                return Ok(());
            }
            n += 1;
            let (method, path, body) = match step {
                0 => (
                    Method::POST,
                    "/orders".to_owned(),
                    Some(place_body(n, &book)),
                ),
                1 => (
                    Method::POST,
                    format!("/orders/{order_id}/items"),
                    Some(json!({"sku": pen, "quantity": 1, "unit_price_cents": 250})),
                ),
                2 => (Method::POST, format!("/orders/{order_id}/confirm"), None),
                3 if cancelled => (
                    Method::POST,
                    format!("/orders/{order_id}/cancel"),
                    Some(json!({"reason": "changed my mind"})),
                ),
                3 => (
                    Method::POST,
                    format!("/orders/{order_id}/ship"),
                    Some(json!({"carrier": "DHL", "tracking_number": format!("JD{n}")})),
                ),
                _ => (Method::POST, format!("/orders/{order_id}/deliver"), None),
            };
            let started = Instant::now();
            let (status, answer) = client.send(method, &path, body).await;
            let ok = status.starts_with('2');
            report.lock().await.record(started.elapsed(), &status, ok);
            next_start = pacer.next_start(started).unwrap_or_else(Instant::now);
            if !ok || (cancelled && step == 3) {
                break;
            }
            if step == 0 {
                order_id = answer
                    .as_ref()
                    .and_then(|a| a["id"].as_str())
                    .unwrap_or_default()
                    .to_owned();
            }
            if step == 2 && !cancelled && !stock_reserved(&client, &order_id, answer.as_ref()).await
            {
                // Cancelled by the fulfilment workflow: out of stock.
                report.lock().await.note("out of stock");
                break;
            }
        }
    }
    Ok(())
}

/// Waits, after the confirm answered `confirmed`, until the fulfilment
/// workflow has reserved the order's stock (its next version): true once
/// it has, false when it cancelled the order instead. An API without the
/// workflow (no `stock_reserved` in the answer) ships at once.
async fn stock_reserved(client: &Client, order_id: &str, confirmed: Option<&Value>) -> bool {
    let Some(confirmed) = confirmed else {
        return true;
    };
    if confirmed.get("stock_reserved") != Some(&Value::Bool(false)) {
        return true;
    }
    let next = confirmed["version"].as_u64().unwrap_or(0) + 1;
    let path = format!("/orders/{order_id}?min_version={next}");
    let (_, order) = client.send(Method::GET, &path, None).await;
    order.is_some_and(|order| order["stock_reserved"] == true)
}

/// Places the order the hot-entity workers share; returns its id.
pub async fn place_hot(client: &Client) -> anyhow::Result<String> {
    let (status, answer) = client
        .send(Method::POST, "/orders", Some(place_body(0, "BOOK-1")))
        .await;
    answer
        .as_ref()
        .and_then(|a| a["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("placing the hot order answered {status}: {answer:?}"))
}

/// Adds one unit of one SKU to `order_id` until it is time to stop, pacing
/// request starts: with many workers, many commands on one order at once.
pub async fn drive_hot(
    client: Client,
    order_id: String,
    pacer: Pacer,
    stop: Stop,
    report: Arc<Mutex<Report>>,
) -> anyhow::Result<()> {
    let path = format!("/orders/{order_id}/items");
    let mut ticks = stop.ticks(&pacer);
    while let Some(started) = ticks.next().await {
        let body = json!({"sku": "HOT-1", "quantity": 1, "unit_price_cents": 100});
        let (status, _) = client.send(Method::POST, &path, Some(body)).await;
        let ok = status.starts_with('2');
        report.lock().await.record(started.elapsed(), &status, ok);
    }
    Ok(())
}

fn place_body(n: u64, sku: &str) -> Value {
    json!({
        "customer_id": format!("customer-{}", n % 1000),
        "email": "loadgen@example.com",
        "items": [{"sku": sku, "quantity": 1 + n % 3, "unit_price_cents": 1500}]
    })
}
