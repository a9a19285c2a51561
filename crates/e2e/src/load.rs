//! Load through the HTTP API: clients that each own their orders, take them
//! through their lifecycle with read-your-writes, and check every answer
//! against their own model of those orders. What they saw is in [`Tally`],
//! with the time of every acknowledged command and retried request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

/// How soon a 503/504 answer is asked again.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// What the clients saw.
#[derive(Default)]
pub struct Tally {
    pub ok: AtomicU64,
    pub retryable: AtomicU64,
    pub wrong: Mutex<Vec<String>>,
    /// Each order's version after its last acknowledged command.
    pub orders: Mutex<BTreeMap<Uuid, (u64, &'static str)>>,
    /// When each command was acknowledged (2xx).
    pub acks: Mutex<Vec<Instant>>,
    /// When each 503/504 answer (to be retried) came.
    pub retried: Mutex<Vec<Instant>>,
}

/// One client: places orders and takes each through its life, checking
/// every answer against its own model of the order.
pub struct Client {
    pub http: reqwest::Client,
    pub write_to: String,
    pub read_from: String,
    pub tally: Arc<Tally>,
    /// A request is retried (same Idempotency-Key) this long before it counts as wrong.
    pub retry_bound: Duration,
}

impl Client {
    pub async fn run(&self, n: usize, stop: &AtomicBool) {
        let mut count = 0u64;
        while !stop.load(Ordering::Relaxed) {
            count += 1;
            let cancel = count.is_multiple_of(4);
            let place = json!({
                "customer_id": format!("customer-{n}"),
                "email": "scale@example.com",
                "items": [{"sku": "BOOK-1", "quantity": 1, "unit_price_cents": 1500}]
            });
            let Some(placed) = self
                .command("/orders".into(), Some(place), 1, "placed")
                .await
            else {
                return;
            };
            let Some(id) = placed["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()) else {
                self.wrong(format!("a placed order without an id: {placed}"))
                    .await;
                return;
            };
            let mut steps: Vec<(String, Option<Value>, &'static str)> = vec![
                (
                    format!("/orders/{id}/items"),
                    Some(json!({"sku": "PEN-2", "quantity": 2, "unit_price_cents": 250})),
                    "placed",
                ),
                (format!("/orders/{id}/confirm"), None, "confirmed"),
            ];
            if cancel {
                let reason = json!({"reason": "changed my mind"});
                steps.push((format!("/orders/{id}/cancel"), Some(reason), "cancelled"));
            } else {
                let parcel = json!({"carrier": "DHL", "tracking_number": format!("JD{n}x{count}")});
                // What the fulfilment workflow records once the stock is held.
                steps.push((format!("/orders/{id}/stock-reserved"), None, "confirmed"));
                steps.push((format!("/orders/{id}/ship"), Some(parcel), "shipped"));
                steps.push((format!("/orders/{id}/deliver"), None, "delivered"));
            }
            self.tally.orders.lock().await.insert(id, (1, "placed"));
            for (version, (path, body, status)) in (2..).zip(steps) {
                if self.command(path, body, version, status).await.is_none() {
                    return;
                }
                self.tally.orders.lock().await.insert(id, (version, status));
                // Read-your-writes through the other order-service.
                if !self.read(id, version, status).await {
                    return;
                }
            }
        }
    }

    /// Sends a command until it gets a final answer; retries carry the same key.
    async fn command(
        &self,
        path: String,
        body: Option<Value>,
        version: u64,
        status: &str,
    ) -> Option<Value> {
        let key = Uuid::now_v7().to_string();
        let url = format!("{}{path}", self.write_to);
        let answer = self
            .until_final(&url, || {
                let request = self.http.post(&url).header("idempotency-key", &key);
                match &body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await?;
        self.tally.acks.lock().await.push(Instant::now());
        self.check(&url, &answer, version, status)
            .await
            .then_some(answer)
    }

    async fn read(&self, id: Uuid, version: u64, status: &str) -> bool {
        let url = format!("{}/orders/{id}", self.read_from);
        match self.until_final(&url, || self.http.get(&url)).await {
            Some(answer) => self.check(&url, &answer, version, status).await,
            None => false,
        }
    }

    /// Retries 503/504 answers that carry `Retry-After`, for up to the retry
    /// bound; anything else is final.
    async fn until_final(
        &self,
        url: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Option<Value> {
        let deadline = crate::wait::Deadline::new(RETRY_EVERY, self.retry_bound);
        let answer = loop {
            let answer = self.attempt(url, request()).await;
            if answer.is_ok() || !deadline.pause().await {
                break answer;
            }
        };
        match answer.and_then(|answer| answer) {
            Ok(body) => {
                self.tally.ok.fetch_add(1, Ordering::Relaxed);
                Some(body)
            }
            Err(seen) => {
                self.wrong(seen).await;
                None
            }
        }
    }

    /// One request: `Ok` with a final answer, right or wrong; `Err` with a
    /// retryable one.
    async fn attempt(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Result<Value, String>, String> {
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Ok(Err(format!("{url}: no answer: {error}"))),
        };
        let code = response.status().as_u16();
        let retryable = matches!(code, 503 | 504) && response.headers().contains_key("retry-after");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&code) {
            return Ok(Ok(body));
        }
        let seen = format!("{url}: {code} {body}");
        if !retryable {
            return Ok(Err(seen));
        }
        self.tally.retryable.fetch_add(1, Ordering::Relaxed);
        self.tally.retried.lock().await.push(Instant::now());
        Err(seen)
    }

    async fn check(&self, url: &str, answer: &Value, version: u64, status: &str) -> bool {
        let right = answer["version"].as_u64() == Some(version)
            && answer["status"].as_str() == Some(status);
        if !right {
            self.wrong(format!(
                "{url}: expected version {version} {status}, got {answer}"
            ))
            .await;
        }
        right
    }

    async fn wrong(&self, what: String) {
        self.tally.wrong.lock().await.push(what);
    }
}

/// Waits until the clients have acknowledged `count` orders (or one went wrong).
pub async fn wait_for_orders(tally: &Tally, count: usize) -> anyhow::Result<()> {
    let what = format!("{count} orders");
    tally
        .wait_until(&what, Duration::from_secs(180), async || {
            tally.orders.lock().await.len() >= count
        })
        .await
}

/// Waits until `count` more commands are acknowledged (or one went wrong).
pub async fn wait_for_acks(tally: &Tally, count: usize) -> anyhow::Result<()> {
    let target = tally.acks.lock().await.len() + count;
    let what = format!("{count} more acknowledgements");
    tally
        .wait_until(&what, Duration::from_secs(240), async || {
            tally.acks.lock().await.len() >= target
        })
        .await
}

impl Tally {
    /// Polls `reached` until it holds; fails as soon as an answer was wrong,
    /// or after `bound`.
    async fn wait_until(
        &self,
        what: &str,
        bound: Duration,
        reached: impl AsyncFn() -> bool,
    ) -> anyhow::Result<()> {
        // Ok: done, or an answer went wrong; Err: not yet.
        let outcome = crate::wait::until(bound, async || {
            let wrong = self.wrong.lock().await;
            if !wrong.is_empty() {
                return Ok(Err(anyhow::anyhow!(
                    "wrong answers: {:#?}",
                    &wrong[..wrong.len().min(10)]
                )));
            }
            drop(wrong);
            if reached().await { Ok(Ok(())) } else { Err(()) }
        })
        .await;
        match outcome {
            Ok(done) => done,
            Err(()) => anyhow::bail!("{what} not reached within {bound:?}"),
        }
    }

    /// Prints what the clients saw and fails when any answer was wrong.
    pub async fn assert_none_wrong(&self) -> anyhow::Result<()> {
        let wrong = self.wrong.lock().await;
        println!(
            "answers: {} correct, {} retried, {} wrong; {} orders",
            self.ok.load(Ordering::Relaxed),
            self.retryable.load(Ordering::Relaxed),
            wrong.len(),
            self.orders.lock().await.len()
        );
        anyhow::ensure!(
            wrong.is_empty(),
            "wrong answers: {:#?}",
            &wrong[..wrong.len().min(10)]
        );
        Ok(())
    }

    /// Every order the clients were acknowledged, read through the projector
    /// `via(n)` for the n-th, equals the fold of the log and is where its
    /// client left it: no acknowledged command lost, none applied twice.
    pub async fn assert_orders_are_the_fold(
        &self,
        http: &reqwest::Client,
        fold: &crate::fold::LogFold,
        via: impl Fn(usize) -> String,
    ) -> anyhow::Result<()> {
        let expected = self.orders.lock().await.clone();
        for (n, (id, (version, status))) in expected.iter().enumerate() {
            let via = via(n);
            let answer: Value = http
                .get(format!(
                    "{via}/orders/{id}?min_version={version}&wait_ms=20000"
                ))
                .send()
                .await?
                .json()
                .await?;
            anyhow::ensure!(
                answer == serde_json::to_value(&fold.snapshots[id])?,
                "order {id} via {via} is the fold of the log: {answer}"
            );
            anyhow::ensure!(
                (
                    answer["version"].as_u64(),
                    answer["state"]["status"].as_str()
                ) == (Some(*version), Some(*status)),
                "order {id} is where its client left it (version {version}, {status}): {answer}"
            );
        }
        Ok(())
    }
}
