//! The projector's HTTP API, for every hosted entity type: the state it owns
//! (`/{entity}/{id}`), command outcomes, partition ownership and progress,
//! health and metrics.
//!
//! A query about a key whose partition another instance owns is forwarded
//! there (see `routing`); while the partition has no owner that can answer
//! (a rebalance, a restore, a stopped partition) the answer is a 503 with
//! `Retry-After`, never a state from a store that is not kept current. The
//! one exception is asked for explicitly: `standby=true` accepts a read from
//! a warm copy, and the answer says how far behind it is.

mod commands;
mod health;
mod partitions;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use event_store::partition_for_key;
use event_store::store::{PartitionHandle, PartitionStatus, Replica, WaitError};
use serde::Deserialize;
use service_kit::Problem;
use tokio::sync::watch;
use uuid::Uuid;

use crate::entity::Entity;
use crate::routing::{FORWARDED, unavailable};

/// The longest a request may wait for progress.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long a request waits when it asks to wait without saying how long.
const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    entities: Arc<[Arc<Entity>]>,
    instance_id: String,
}

impl AppState {
    /// State over the hosted entity types (the first is the default of
    /// `/partitions`).
    pub fn new(entities: Vec<Arc<Entity>>, instance_id: String) -> Self {
        Self {
            entities: entities.into(),
            instance_id,
        }
    }

    /// Completes once any processor thread has ended; names its entity.
    pub(crate) async fn wait_any_processor_done(&self) -> &'static str {
        let waits = self.entities.iter().map(|entity| {
            Box::pin(async move {
                entity.wait_processor_done().await;
                entity.name
            })
        });
        futures_util::future::select_all(waits).await.0
    }

    /// The hosted entity served under `/{name}`.
    fn entity(&self, name: &str) -> Result<&Arc<Entity>, Problem> {
        self.entities
            .iter()
            .find(|entity| entity.name == name)
            .ok_or_else(|| {
                Problem::new(StatusCode::NOT_FOUND).detail(format!(
                    "no entity type `{name}` here (hosted: {})",
                    self.entities
                        .iter()
                        .map(|e| e.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Where a query about `id` is answered: here, from the owned store, or
    /// at the owner's address.
    fn locate(&self, entity: &Entity, id: &Uuid, headers: &HeaderMap) -> Result<Located, Problem> {
        let partition = partition_of(entity, id);
        if let Some(handle) = entity.registry.get(partition) {
            if let PartitionStatus::Stopped { reason } = handle.status() {
                return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .title("Partition stopped")
                    .detail(format!("partition {partition} is stopped: {reason}"))
                    .with("partition", partition));
            }
            return Ok(Located::Here(handle));
        }
        if headers.contains_key(FORWARDED) {
            // Sent here as the owner, but the partition has moved on (or not arrived yet).
            entity.directory.refresh();
            return Err(unavailable(
                partition,
                &format!(
                    "is not held by instance {} any more, or not yet",
                    self.instance_id
                ),
            ));
        }
        Ok(Located::There {
            addr: entity.directory.owner_elsewhere(partition)?,
            partition,
        })
    }
}

/// The partition of a key.
fn partition_of(entity: &Entity, id: &Uuid) -> i32 {
    let count = entity.registry.partition_count();
    partition_for_key(id.hyphenated().to_string().as_bytes(), count)
}

/// A warm copy of the key's partition kept here, for reads that accept one.
fn standby_of(entity: &Entity, id: &Uuid) -> Option<Arc<Replica>> {
    entity.registry.standbys.get(partition_of(entity, id))
}

/// Relays a query to the owner of its partition.
async fn forward(
    entity: &Entity,
    addr: &str,
    partition: i32,
    uri: &Uri,
    params: &QueryParams,
) -> Result<Response, Problem> {
    entity
        .directory
        .forward(addr, uri, partition, params.bound())
        .await
}

/// Where a query is answered.
enum Located {
    /// This instance owns the partition.
    Here(Arc<PartitionHandle>),
    /// Another instance does.
    There { addr: String, partition: i32 },
}

/// The router, drivable without a socket in tests.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/{entity}/{id}", get(state::get_state))
        .route(
            "/{entity}/{id}/commands/{command_id}",
            get(commands::get_outcome),
        )
        .route("/partitions", get(partitions::list))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(service_kit::problem::not_found)
        .method_not_allowed_fallback(service_kit::problem::method_not_allowed)
        .with_state(state)
}

/// Query parameters of the state and outcome queries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryParams {
    /// Answer only once this offset of the key's partition is folded.
    after_offset: Option<i64>,
    /// Answer only once the entity has at least this version.
    min_version: Option<u64>,
    /// The bound on waiting, in ms (at most 30000).
    wait_ms: Option<u64>,
    /// Accept an answer from a standby copy when this instance does not own
    /// the partition (stale by the lag the answer states).
    #[serde(default)]
    standby: bool,
}

impl QueryParams {
    fn bound(&self) -> Duration {
        self.wait_ms
            .map_or(DEFAULT_WAIT, Duration::from_millis)
            .min(MAX_WAIT)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.bound()
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

/// Waits until `offset` is folded in the partition, within the deadline.
async fn wait_past(
    handle: &PartitionHandle,
    offset: i64,
    deadline: Instant,
) -> Result<(), Problem> {
    handle
        .wait_past(offset, deadline.saturating_duration_since(Instant::now()))
        .await
        .map_err(|error| {
            let problem = match error {
                // Retryable at once: the caller finds the new owner.
                WaitError::Released => {
                    Problem::new(StatusCode::SERVICE_UNAVAILABLE).title("Partition moved")
                }
                WaitError::TimedOut { .. } => {
                    Problem::new(StatusCode::GATEWAY_TIMEOUT).title("Not caught up in time")
                }
            };
            problem
                .detail(format!("partition {}: {error}", handle.partition))
                .with("partition", handle.partition)
                .retry_after(1)
        })
}

/// Waits for the partition's fold to move, or the deadline; false on the deadline.
async fn next_fold(seen: &mut watch::Receiver<i64>, deadline: Instant) -> bool {
    let remaining = deadline.saturating_duration_since(Instant::now());
    matches!(
        tokio::time::timeout(remaining, seen.changed()).await,
        Ok(Ok(()))
    )
}

fn internal(error: impl std::error::Error + 'static) -> Problem {
    tracing::error!(error = %service_kit::problem::error_chain(&error), "request failed");
    Problem::internal()
}
