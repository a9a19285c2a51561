//! Carrying a plan out through order-service's API, each command with the
//! `Idempotency-Key` of its step, each retried until it has a verdict.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::order::Sku;
use event_store::trace_context::{TRACEPARENT, TraceParent};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::retry::Backoff;
use tokio::sync::watch;
use uuid::Uuid;

use crate::Metrics;
use crate::workflow::{Line, Plan, key, out_of_stock};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The process is stopping: the step has no verdict, and is done again
/// after the restart.
#[derive(Debug)]
pub struct Stopping;

/// order-service's API.
#[derive(Clone)]
pub struct OrderService {
    http: reqwest::Client,
    base_url: String,
    stopping: watch::Receiver<bool>,
    /// Sent as `traceparent`: the commands continue the fact's trace.
    trace: Option<TraceParent>,
    metrics: Arc<Metrics>,
}

/// One command of a plan: its step's name (`reserve`, `undo`, ...), and the
/// `Idempotency-Key` derived from the fact and the step.
struct Step<'a> {
    name: &'a str,
    key: String,
}

impl<'a> Step<'a> {
    fn new(cause: Uuid, name: &'a str, sku: Option<&Sku>) -> Self {
        Self {
            name,
            key: key(cause, name, sku),
        }
    }
}

impl OrderService {
    /// A client of order-service at `base_url`.
    pub fn new(
        base_url: &str,
        stopping: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
    ) -> reqwest::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            stopping,
            trace: None,
            metrics,
        })
    }

    /// The same client, its commands in `trace` (that of the fact they
    /// carry out).
    pub fn continuing(&self, trace: Option<TraceParent>) -> Self {
        Self {
            trace,
            ..self.clone()
        }
    }

    /// Where the steps are counted.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Sends a command until it has a verdict (any answer below 500): a
    /// retry carries the same key, so it is recognised if it took effect.
    async fn command(
        &self,
        method: Method,
        path: &str,
        step: &Step<'_>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), Stopping> {
        let mut backoff = Backoff::default();
        let started = Instant::now();
        loop {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base_url))
                .header("idempotency-key", &step.key);
            if let Some(body) = &body {
                request = request.json(body);
            }
            if let Some(trace) = &self.trace {
                request = request.header(TRACEPARENT, trace.to_string());
            }
            match request.send().await {
                Ok(answer) if !answer.status().is_server_error() => {
                    let status = answer.status();
                    self.metrics.verdict(step.name, status, started.elapsed());
                    return Ok((status, answer.json().await.unwrap_or(Value::Null)));
                }
                Ok(answer) => {
                    tracing::warn!(path, status = %answer.status(), "no verdict yet; retrying");
                }
                Err(error) => tracing::warn!(path, %error, "order-service unreachable; retrying"),
            }
            self.metrics.retried(step.name);
            let mut stopping = self.stopping.clone();
            tokio::select! {
                _ = stopping.wait_for(|stop| *stop) => return Err(Stopping),
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    /// Whether `order` holds a reservation of `sku` now.
    async fn holds(&self, sku: &Sku, order: Uuid) -> bool {
        let answer = self
            .http
            .get(format!("{}/inventory/{sku}", self.base_url))
            .send()
            .await;
        let Ok(answer) = answer else {
            return false;
        };
        let stock: Value = answer.json().await.unwrap_or(Value::Null);
        stock["reservations"]
            .as_array()
            .is_some_and(|held| held.iter().any(|r| r["order_id"] == order.to_string()))
    }
}

/// Carries out the plan of the fact `cause` of order `order`.
pub async fn carry_out(
    service: &OrderService,
    order: Uuid,
    cause: Uuid,
    plan: Plan,
) -> Result<(), Stopping> {
    match plan {
        Plan::Reserve(lines) => reserve(service, order, cause, &lines).await,
        Plan::Release(lines) => {
            for line in &lines {
                release(service, order, cause, "release", &line.sku).await?;
            }
            Ok(())
        }
        Plan::Commit(lines) => {
            for line in &lines {
                let path = format!("/inventory/{}/reservations/{order}/commit", line.sku);
                let (status, answer) = service
                    .command(
                        Method::POST,
                        &path,
                        &Step::new(cause, "commit", Some(&line.sku)),
                        None,
                    )
                    .await?;
                if status != StatusCode::OK {
                    tracing::warn!(%order, sku = %line.sku, %status, %answer, "shipped without a reservation to commit");
                }
            }
            Ok(())
        }
        Plan::Nothing => Ok(()),
    }
}

/// Reserves every line; records it on the order, or undoes what was held
/// and cancels the order when a line cannot be held.
async fn reserve(
    service: &OrderService,
    order: Uuid,
    cause: Uuid,
    lines: &[Line],
) -> Result<(), Stopping> {
    let mut held: Vec<&Sku> = Vec::new();
    for line in lines {
        let path = format!("/inventory/{}/reservations", line.sku);
        let body = json!({ "order_id": order, "units": line.units });
        let step = Step::new(cause, "reserve", Some(&line.sku));
        let (status, answer) = service
            .command(Method::POST, &path, &step, Some(body))
            .await?;
        // A 409 may be this step done before (its answer forgotten): the
        // inventory says whether the order holds the units.
        let holds = status == StatusCode::OK
            || (status == StatusCode::CONFLICT && service.holds(&line.sku, order).await);
        if holds {
            held.push(&line.sku);
            continue;
        }
        tracing::info!(%order, sku = %line.sku, %status, detail = %answer["detail"], "cannot reserve: cancelling the order");
        for sku in held {
            release(service, order, cause, "undo", sku).await?;
        }
        let reason = json!({ "reason": out_of_stock(&line.sku) });
        let path = format!("/orders/{order}/cancel");
        let (status, answer) = service
            .command(
                Method::POST,
                &path,
                &Step::new(cause, "cancel", None),
                Some(reason),
            )
            .await?;
        if status != StatusCode::OK {
            tracing::info!(%order, %status, detail = %answer["detail"], "the order was not cancelled (it moved on)");
        }
        return Ok(());
    }
    let path = format!("/orders/{order}/stock-reserved");
    let (status, answer) = service
        .command(
            Method::POST,
            &path,
            &Step::new(cause, "reserved", None),
            None,
        )
        .await?;
    if status != StatusCode::OK {
        // Cancelled meanwhile: what was reserved for it goes back.
        tracing::info!(%order, %status, detail = %answer["detail"], "stock reserved for an order that moved on: releasing");
        for sku in held {
            release(service, order, cause, "undo", sku).await?;
        }
    }
    Ok(())
}

/// Releases the order's reservation of `sku` (none held is nothing to do).
async fn release(
    service: &OrderService,
    order: Uuid,
    cause: Uuid,
    step: &str,
    sku: &Sku,
) -> Result<(), Stopping> {
    let path = format!("/inventory/{sku}/reservations/{order}");
    service
        .command(
            Method::DELETE,
            &path,
            &Step::new(cause, step, Some(sku)),
            None,
        )
        .await
        .map(|_| ())
}
