//! The write path: execute, order, validate.
//!
//! Read the order's snapshot from the projector, check `If-Match`, `decide`,
//! append the batch through the group-commit appender, then wait for the
//! projector to fold past it and read the verdict. A conflict (another
//! command got there first) is re-executed on the new state, a bounded number
//! of times, unless the caller pinned a version with `If-Match`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use domain::aggregate::{CommandBatch, CommandMeta, Verdict};
use domain::order::{ErrorKind, OrderAggregate, OrderCommand, OrderError, OrderEvent, decide};
use event_store::{AppendError, AppendRecord, Appender};
use service_kit::Problem;
use tracing::Instrument;
use uuid::Uuid;

use crate::projector::{OrderSnapshot, ProjectorClient, ProjectorError, Wait};
use crate::snapshots::Snapshots;

/// Runs commands against the log.
#[derive(Clone)]
pub struct Executor {
    /// Appends command batches in shared transactions.
    pub appender: Appender,
    /// Reads snapshots and verdicts.
    pub projector: ProjectorClient,
    /// The events topic.
    pub events_topic: String,
    /// The bound on waiting for a verdict.
    pub verdict_timeout: Duration,
    /// Re-executions after a conflict, without `If-Match`.
    pub conflict_retries: u32,
    /// The snapshots this instance saw last: a command on an order it just
    /// wrote is decided without reading the projector first.
    pub snapshots: Arc<Snapshots>,
}

/// What deciding on a snapshot came to.
enum Decision {
    /// Nothing to append: the answer is this snapshot.
    Answer(Box<OrderSnapshot>),
    /// Append this batch.
    Append(CommandBatch<OrderEvent>),
}

/// One command to run.
#[derive(Clone, Debug)]
pub struct CommandRequest {
    /// The order it is for.
    pub order_id: Uuid,
    /// What is asked.
    pub command: OrderCommand,
    /// Stable across retries (derived from the `Idempotency-Key` when there is one).
    pub command_id: Uuid,
    /// The version the caller's `If-Match` pins, if any.
    pub if_match: Option<u64>,
    /// The order id was just minted for this command, so no state exists to
    /// read: the first attempt decides on the empty state.
    pub new_id: bool,
}

/// Why a command did not take effect, by how the caller should treat it.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The domain refused it.
    #[error(transparent)]
    Rejected(#[from] OrderError),
    /// `If-Match` named another version.
    #[error("the order is at version {current}, not the version in If-Match")]
    PreconditionFailed {
        /// The order's version.
        current: u64,
    },
    /// Every re-execution met another conflicting command.
    #[error("the order kept changing under this command ({attempts} attempts); retry")]
    Contention {
        /// How many times it was tried.
        attempts: u32,
    },
    /// Appended, but no verdict came in time: it may still take effect.
    #[error(
        "command {command_id} was appended but its verdict did not arrive in time; it may still take effect"
    )]
    VerdictTimeout {
        /// The command, to retry with the same `Idempotency-Key` or to look up.
        command_id: Uuid,
    },
    /// Kafka did not take the append; nothing was written.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// The projector could not be asked.
    #[error(transparent)]
    Projector(#[from] ProjectorError),
}

impl ExecuteError {
    /// The problem the API answers with. 5xx details reveal nothing internal.
    pub fn into_problem(self) -> Problem {
        match self {
            ExecuteError::Rejected(error) => {
                let status = match error.kind() {
                    ErrorKind::NotFound => StatusCode::NOT_FOUND,
                    ErrorKind::Conflict => StatusCode::CONFLICT,
                    ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                };
                Problem::new(status).detail(error.to_string())
            }
            ExecuteError::PreconditionFailed { current } => Problem::new(StatusCode::PRECONDITION_FAILED)
                .detail(format!("the order is at version {current}; read it again and retry with If-Match: \"{current}\""))
                .with("version", current),
            ExecuteError::Contention { .. } => Problem::new(StatusCode::CONFLICT)
                .detail(self.to_string())
                .retry_after(1),
            ExecuteError::VerdictTimeout { command_id } => Problem::new(StatusCode::GATEWAY_TIMEOUT)
                .title("Verdict pending")
                .detail(format!(
                    "the command was appended but not judged in time; it may still take effect. \
                     Retry with the same Idempotency-Key to learn its outcome (command {command_id})"
                ))
                .with("command_id", command_id.to_string())
                .retry_after(1),
            ExecuteError::Append(error) => {
                tracing::warn!(%error, "append failed");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .detail("the command could not be stored and did not take effect; retry")
                    .retry_after(1)
            }
            ExecuteError::Projector(error) => {
                tracing::warn!(%error, "projector unavailable");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .detail("order state is temporarily unavailable; retry")
                    .retry_after(1)
            }
        }
    }
}

impl Executor {
    /// Runs a command to its verdict; returns the order's snapshot after it.
    pub async fn execute(&self, request: &CommandRequest) -> Result<OrderSnapshot, ExecuteError> {
        let span = tracing::info_span!("command", order_id = %request.order_id, command_id = %request.command_id);
        self.execute_in_span(request).instrument(span).await
    }

    async fn execute_in_span(
        &self,
        request: &CommandRequest,
    ) -> Result<OrderSnapshot, ExecuteError> {
        let wait = Wait {
            timeout: self.verdict_timeout,
            ..Wait::default()
        };
        let mut after_offset = None;
        for attempt in 1..=self.conflict_retries + 1 {
            let (snapshot, decision) = if attempt == 1 && request.new_id {
                let snapshot = OrderSnapshot::default();
                let decision = decide_on(request, &snapshot)?;
                (snapshot, decision)
            } else if let Some((snapshot, batch)) = self.remembered(request, attempt) {
                (snapshot, Decision::Append(batch))
            } else {
                let snapshot = self.read(request.order_id, after_offset, wait).await?;
                let decision = decide_on(request, &snapshot)?;
                (snapshot, decision)
            };
            let batch = match decision {
                Decision::Answer(snapshot) => return Ok(*snapshot),
                Decision::Append(batch) => batch,
            };
            let appended = self
                .appender
                .append(AppendRecord {
                    topic: self.events_topic.clone(),
                    key: request.order_id.to_string().into_bytes(),
                    payload: batch.encode("order"),
                    headers: vec![(
                        "command_id".into(),
                        request.command_id.to_string().into_bytes(),
                    )],
                })
                .await?;
            tracing::debug!(
                partition = appended.partition,
                offset = appended.offset,
                attempt,
                "appended"
            );
            let outcome = self
                .projector
                .outcome(
                    request.command_id,
                    request.order_id,
                    Some(appended.offset),
                    self.verdict_timeout,
                )
                .await
                .map_err(|error| match error {
                    ProjectorError::TimedOut => ExecuteError::VerdictTimeout {
                        command_id: request.command_id,
                    },
                    other => other.into(),
                })?;
            let verdict = match outcome {
                Some(outcome) => outcome.verdict,
                None => {
                    // Folded, yet no outcome where it is folded now: a partition
                    // restored from the changelog keeps states, not outcomes.
                    // The state tells: an accepted command is among its recent ones.
                    let current = self
                        .state_after(request.order_id, appended.offset, wait)
                        .await?;
                    if current
                        .recent_commands()
                        .any(|id| *id == request.command_id)
                    {
                        return Ok(current);
                    }
                    Verdict::Conflict {
                        expected_version: current.version + 1,
                        found_version: snapshot.version + 1,
                    }
                }
            };
            match verdict {
                // The fold is deterministic: the projector's new snapshot is this one.
                Verdict::Accepted { .. } => {
                    let next = snapshot.apply::<OrderAggregate>(&batch).0;
                    self.snapshots.put(request.order_id, &next);
                    return Ok(next);
                }
                Verdict::Duplicate => {
                    return Ok(self
                        .state_after(request.order_id, appended.offset, wait)
                        .await?);
                }
                Verdict::Conflict { .. } if request.if_match.is_some() => {
                    let current = self
                        .state_after(request.order_id, appended.offset, wait)
                        .await?;
                    return Err(ExecuteError::PreconditionFailed {
                        current: current.version,
                    });
                }
                Verdict::Conflict { .. } => {
                    tracing::debug!(attempt, "conflict; re-executing on the newer state");
                    after_offset = Some(appended.offset);
                }
            }
        }
        Err(ExecuteError::Contention {
            attempts: self.conflict_retries + 1,
        })
    }

    /// A batch decided on the snapshot this instance remembers, on the first
    /// attempt. Only an append is trusted to it (a stale snapshot makes it a
    /// conflict); a refusal, an `If-Match` mismatch or a replay is decided
    /// again on the projector's state.
    fn remembered(
        &self,
        request: &CommandRequest,
        attempt: u32,
    ) -> Option<(OrderSnapshot, CommandBatch<OrderEvent>)> {
        if attempt > 1 {
            return None;
        }
        let snapshot = self.snapshots.get(&request.order_id)?;
        match decide_on(request, &snapshot) {
            Ok(Decision::Append(batch)) => Some((snapshot, batch)),
            _ => None,
        }
    }

    /// The order's state from the projector (past `after_offset`, if
    /// given), remembered for the next command.
    async fn read(
        &self,
        order_id: Uuid,
        after_offset: Option<i64>,
        wait: Wait,
    ) -> Result<OrderSnapshot, ProjectorError> {
        let wait = Wait {
            after_offset,
            ..wait
        };
        let snapshot = self.projector.snapshot(order_id, wait).await?;
        self.snapshots.put(order_id, &snapshot);
        Ok(snapshot)
    }

    /// The order's state once the projector has folded past `offset`.
    async fn state_after(
        &self,
        order_id: Uuid,
        offset: i64,
        wait: Wait,
    ) -> Result<OrderSnapshot, ProjectorError> {
        self.read(order_id, Some(offset), wait).await
    }
}

/// Checks a command against a snapshot and decides it: the answer at once
/// (already accepted, or nothing to change), or a batch to append.
fn decide_on(request: &CommandRequest, snapshot: &OrderSnapshot) -> Result<Decision, ExecuteError> {
    if snapshot
        .recent_commands()
        .any(|id| *id == request.command_id)
    {
        // A retry (same Idempotency-Key) of a command the log already
        // accepted: deciding again would refuse it as illegal now.
        tracing::debug!("already accepted; answering the current state");
        return Ok(Decision::Answer(Box::new(snapshot.clone())));
    }
    if let Some(expected) = request.if_match
        && snapshot.version != expected
    {
        return Err(ExecuteError::PreconditionFailed {
            current: snapshot.version,
        });
    }
    let events = decide(&request.command, &snapshot.state)?;
    let meta = CommandMeta {
        aggregate_id: request.order_id,
        command_id: request.command_id,
        correlation_id: request.command_id,
        occurred_at: Utc::now(),
    };
    Ok(
        match CommandBatch::new(meta, snapshot.version, events, Uuid::now_v7) {
            Ok(batch) => Decision::Append(batch),
            // A command that decides no events changes nothing.
            Err(_) => Decision::Answer(Box::new(snapshot.clone())),
        },
    )
}
