//! The projector's HTTP API: the state it owns, command outcomes, partition
//! ownership and progress, health and metrics.
//!
//! A query about a key whose partition this instance does not own answers
//! 421 (never a state from a store it does not own); one about a stopped
//! partition answers 503.

mod commands;
mod health;
mod orders;
mod partitions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use event_store::StreamTopics;
use event_store::partition_for_key;
use event_store::store::{PartitionHandle, PartitionStatus, Registry};
use serde::Deserialize;
use service_kit::Problem;
use tokio::sync::watch;
use uuid::Uuid;

/// The longest a request may wait for progress.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long a request waits when it asks to wait without saying how long.
const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    registry: Arc<Registry>,
    topics: StreamTopics,
    instance_id: String,
    pub(crate) processor_done: Arc<watch::Sender<bool>>,
    /// The read model pipeline's counters, when it runs.
    pub(crate) read_model: Option<Arc<read_model::PipelineMetrics>>,
}

impl AppState {
    /// State over a registry the processor fills.
    pub fn new(registry: Arc<Registry>, topics: StreamTopics, instance_id: String) -> Self {
        Self {
            registry,
            topics,
            instance_id,
            processor_done: Arc::new(watch::Sender::new(false)),
            read_model: None,
        }
    }

    /// Completes once the processor thread has ended.
    pub(crate) async fn wait_processor_done(&self) {
        let _ = self.processor_done.subscribe().wait_for(|done| *done).await;
    }

    /// The partition a key belongs to, if this instance owns it and it runs.
    fn owner_of(&self, id: &Uuid) -> Result<Arc<PartitionHandle>, Problem> {
        let count = self.registry.partition_count();
        let partition = partition_for_key(id.hyphenated().to_string().as_bytes(), count);
        let Some(handle) = self.registry.get(partition) else {
            return Err(Problem::new(StatusCode::MISDIRECTED_REQUEST)
                .title("Partition not owned here")
                .detail(format!(
                    "partition {partition} of {} is not assigned to instance {}; ask its owner, or retry after a rebalance",
                    self.topics.events, self.instance_id
                ))
                .with("partition", partition)
                .retry_after(1));
        };
        if let PartitionStatus::Stopped { reason } = handle.status() {
            return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                .title("Partition stopped")
                .detail(format!("partition {partition} is stopped: {reason}"))
                .with("partition", partition));
        }
        Ok(handle)
    }
}

/// The router, drivable without a socket in tests.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/orders/{id}", get(orders::get_order))
        .route("/commands/{command_id}", get(commands::get_outcome))
        .route("/partitions", get(partitions::list))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(service_kit::problem::not_found)
        .method_not_allowed_fallback(service_kit::problem::method_not_allowed)
        .with_state(state)
}

/// Query parameters of the waiting forms.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitParams {
    /// Answer only once this offset of the key's partition is folded and committed.
    after_offset: Option<i64>,
    /// Answer only once the order has at least this version.
    min_version: Option<u64>,
    /// The aggregate a command was for (command outcomes).
    order_id: Option<Uuid>,
    /// The bound on waiting, in ms (at most 30000).
    wait_ms: Option<u64>,
}

impl WaitParams {
    fn deadline(&self) -> Instant {
        let wait = self
            .wait_ms
            .map_or(DEFAULT_WAIT, Duration::from_millis)
            .min(MAX_WAIT);
        Instant::now() + wait
    }
}

fn parse_id(text: &str, what: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(text).map_err(|_| {
        Problem::new(StatusCode::BAD_REQUEST).detail(format!("{what} must be a UUID, got `{text}`"))
    })
}

fn query_problem(rejection: axum::extract::rejection::QueryRejection) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST).detail(rejection.body_text())
}

/// Waits until `offset` is committed in the partition, within the deadline.
async fn wait_past(
    handle: &PartitionHandle,
    offset: i64,
    deadline: Instant,
) -> Result<(), Problem> {
    handle
        .wait_past(offset, deadline.saturating_duration_since(Instant::now()))
        .await
        .map_err(|error| {
            Problem::new(StatusCode::GATEWAY_TIMEOUT)
                .title("Not caught up in time")
                .detail(format!("partition {}: {error}", handle.partition))
                .with("partition", handle.partition)
                .retry_after(1)
        })
}

/// Waits for the next commit of the partition, or the deadline; false on the deadline.
async fn next_commit(seen: &mut watch::Receiver<i64>, deadline: Instant) -> bool {
    let remaining = deadline.saturating_duration_since(Instant::now());
    matches!(
        tokio::time::timeout(remaining, seen.changed()).await,
        Ok(Ok(()))
    )
}

fn internal(error: impl std::fmt::Display) -> Problem {
    tracing::error!(%error, "request failed");
    Problem::internal()
}
