//! The write path: execute, order, validate, for any aggregate type.
//!
//! Read the entity's snapshot from the projector, check `If-Match`, `decide`,
//! append the batch through the group-commit appender, then wait for the
//! projector to fold past it and read the verdict. A conflict (another
//! command got there first) is re-executed on the new state, a bounded number
//! of times, unless the caller pinned a version with `If-Match`. Commands on
//! one entity take turns within this instance ([`crate::lanes`]).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use domain::aggregate::{
    Aggregate, CommandBatch, CommandMeta, ErrorKind, Refusal, Snapshot, Verdict,
};
use event_store::trace_context::{TRACEPARENT, TraceParent};
use event_store::{AppendError, AppendRecord, Appender};
use service_kit::Problem;
use service_kit::problem::error_chain;
use tracing::Instrument;
use uuid::Uuid;

use crate::lanes::Lanes;
use crate::projector::{ProjectorClient, ProjectorError, Wait};
use crate::snapshots::Snapshots;

/// An entity's snapshot as the projector stores it.
type SnapshotOf<A> = Snapshot<<A as Aggregate>::State>;

/// Where a command's record is in the events topic: a reader that waits
/// until this is folded sees the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
}

/// What a command came to: the entity's state after it, and where its record
/// is (`None` when it appended nothing: it changed nothing).
#[derive(Debug)]
pub struct Executed<A: Aggregate> {
    /// The state after the command.
    pub snapshot: SnapshotOf<A>,
    /// Its record's position.
    pub position: Option<Position>,
}

/// Runs commands on entities of type `A` against the log.
pub struct Executor<A: Aggregate> {
    /// Appends command batches in shared transactions.
    pub appender: Appender,
    /// Reads snapshots and verdicts.
    pub projector: ProjectorClient,
    /// Where the projector serves the entities' states (`orders`: `/orders/{id}`).
    pub resource: &'static str,
    /// The events topic.
    pub events_topic: String,
    /// Its partition count (an entity's partition is its key's).
    pub partitions: i32,
    /// The bound on waiting for a verdict.
    pub verdict_timeout: Duration,
    /// The bound on waiting for the append's transaction to commit.
    pub append_timeout: Duration,
    /// Re-executions after a conflict, without `If-Match`.
    pub conflict_retries: u32,
    /// The snapshots this instance saw last: a command on an entity it just
    /// wrote is decided without reading the projector first.
    pub snapshots: Arc<Snapshots<A::State>>,
    /// Commands on one entity take turns.
    pub lanes: Arc<Lanes>,
}

impl<A: Aggregate> Clone for Executor<A> {
    fn clone(&self) -> Self {
        Self {
            appender: self.appender.clone(),
            projector: self.projector.clone(),
            resource: self.resource,
            events_topic: self.events_topic.clone(),
            partitions: self.partitions,
            verdict_timeout: self.verdict_timeout,
            append_timeout: self.append_timeout,
            conflict_retries: self.conflict_retries,
            snapshots: self.snapshots.clone(),
            lanes: self.lanes.clone(),
        }
    }
}

/// What deciding on a snapshot came to.
enum Decision<A: Aggregate> {
    /// Nothing to append: the answer is this snapshot.
    Answer(Box<SnapshotOf<A>>),
    /// Append this batch.
    Append(CommandBatch<A::Event>),
}

/// One command to run.
pub struct CommandRequest<A: Aggregate> {
    /// The entity it is for.
    pub aggregate_id: Uuid,
    /// What is asked.
    pub command: A::Command,
    /// Stable across retries (derived from the `Idempotency-Key` when there is one).
    pub command_id: Uuid,
    /// The version the caller's `If-Match` pins, if any.
    pub if_match: Option<u64>,
    /// The entity id was just minted for this command, so no state exists to
    /// read: the first attempt decides on the empty state.
    pub new_id: bool,
    /// This request's span in the caller's trace (or a new trace): the
    /// parent of the fold, carried on the appended record.
    pub trace: TraceParent,
}

/// Why a command did not take effect, by how the caller should treat it.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: Refusal> {
    /// The domain refused it.
    #[error(transparent)]
    Rejected(E),
    /// `If-Match` named another version.
    #[error("the entity is at version {current}, not the version in If-Match")]
    PreconditionFailed {
        /// The entity's version.
        current: u64,
    },
    /// Every re-execution met another conflicting command.
    #[error("the entity kept changing under this command ({attempts} attempts); retry")]
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
    /// The append's transaction did not commit in time: it may still.
    #[error("command {command_id} was not stored in time; it may still take effect")]
    AppendTimeout {
        /// The command, to retry with the same `Idempotency-Key`.
        command_id: Uuid,
    },
    /// The projector could not be asked.
    #[error(transparent)]
    Projector(#[from] ProjectorError),
}

impl<E: Refusal> ExecuteError<E> {
    /// The problem the API answers with, naming the entity by `noun`
    /// ("order"). 5xx details reveal nothing internal; the log gets the
    /// whole error chain.
    pub fn into_problem(self, noun: &str) -> Problem {
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
                .detail(format!("the {noun} is at version {current}; read it again and retry with If-Match: \"{current}\""))
                .with("version", current),
            ExecuteError::Contention { attempts } => Problem::new(StatusCode::CONFLICT)
                .detail(format!(
                    "the {noun} kept changing under this command ({attempts} attempts); retry"
                ))
                .retry_after(1),
            ExecuteError::VerdictTimeout { command_id } => Problem::new(StatusCode::GATEWAY_TIMEOUT)
                .title("Verdict pending")
                .detail(format!(
                    "the command was appended but not judged in time; it may still take effect. \
                     Retry with the same Idempotency-Key to learn its outcome (command {command_id})"
                ))
                .with("command_id", command_id.to_string())
                .retry_after(1),
            ExecuteError::AppendTimeout { command_id } => {
                tracing::warn!(%command_id, "append did not commit in time");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .detail(format!(
                        "the command was not stored in time; it may still take effect. \
                         Retry with the same Idempotency-Key to learn its outcome (command {command_id})"
                    ))
                    .with("command_id", command_id.to_string())
                    .retry_after(1)
            }
            ExecuteError::Append(error) => {
                tracing::warn!(error = %error_chain(&error), "append failed");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .detail("the command could not be stored and did not take effect; retry")
                    .retry_after(1)
            }
            ExecuteError::Projector(error) => {
                tracing::warn!(error = %error_chain(&error), "projector unavailable");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .detail(format!("the {noun}'s state is temporarily unavailable; retry"))
                    .retry_after(1)
            }
        }
    }
}

impl<A: Aggregate> Executor<A> {
    /// Runs a command to its verdict, in its entity's turn; returns the
    /// entity's snapshot after it.
    pub async fn execute(
        &self,
        request: &CommandRequest<A>,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        let span = tracing::info_span!(
            "command",
            entity = A::TYPE,
            command = A::command_name(&request.command),
            id = %request.aggregate_id,
            command_id = %request.command_id,
            trace_id = %request.trace.trace_id_hex(),
            span_id = %request.trace.span_id_hex(),
        );
        async {
            let _turn = self.lanes.turn(request.aggregate_id).await;
            self.execute_in_turn(request).await
        }
        .instrument(span)
        .await
    }

    async fn execute_in_turn(
        &self,
        request: &CommandRequest<A>,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        let wait = Wait {
            timeout: self.verdict_timeout,
            ..Wait::default()
        };
        let mut after_offset = None;
        for attempt in 1..=self.conflict_retries + 1 {
            let (snapshot, decision) = if attempt == 1 && request.new_id {
                let snapshot = SnapshotOf::<A>::default();
                let decision = decide_on(request, &snapshot)?;
                (snapshot, decision)
            } else if let Some((snapshot, batch)) = self.remembered(request, attempt) {
                (snapshot, Decision::Append(batch))
            } else {
                let snapshot = self.read(request.aggregate_id, after_offset, wait).await?;
                let decision = decide_on(request, &snapshot)?;
                (snapshot, decision)
            };
            let batch = match decision {
                Decision::Answer(snapshot) => {
                    // Accepted before (a retry): where, if the projector still knows.
                    let position = self.position_of(request).await;
                    return Ok(Executed {
                        snapshot: *snapshot,
                        position,
                    });
                }
                Decision::Append(batch) => batch,
            };
            let append = self.appender.append(AppendRecord {
                topic: self.events_topic.clone(),
                key: request.aggregate_id.to_string().into_bytes(),
                payload: batch.encode(A::TYPE),
                headers: vec![
                    (
                        "command_id".into(),
                        request.command_id.to_string().into_bytes(),
                    ),
                    (TRACEPARENT.into(), request.trace.to_string().into_bytes()),
                ],
            });
            // A broker failover can hold a transaction for tens of seconds;
            // the caller hears back within the bound and retries with its key
            // (a record that commits after all is judged a duplicate then).
            let appended = tokio::time::timeout(self.append_timeout, append)
                .await
                .map_err(|_elapsed| ExecuteError::AppendTimeout {
                    command_id: request.command_id,
                })??;
            tracing::debug!(
                partition = appended.partition,
                offset = appended.offset,
                attempt,
                "appended"
            );
            let position = Some(Position {
                partition: appended.partition,
                offset: appended.offset,
            });
            let executed = |snapshot| Executed { snapshot, position };
            let outcome = self
                .projector
                .outcome(
                    self.resource,
                    request.command_id,
                    request.aggregate_id,
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
                        .state_after(request.aggregate_id, appended.offset, wait)
                        .await?;
                    if current
                        .recent_commands()
                        .any(|id| *id == request.command_id)
                    {
                        return Ok(executed(current));
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
                    let next = snapshot.apply::<A>(&batch).0;
                    self.snapshots.put(request.aggregate_id, &next);
                    return Ok(executed(next));
                }
                Verdict::Duplicate => {
                    let current = self
                        .state_after(request.aggregate_id, appended.offset, wait)
                        .await?;
                    return Ok(executed(current));
                }
                Verdict::Conflict { .. } if request.if_match.is_some() => {
                    let current = self
                        .state_after(request.aggregate_id, appended.offset, wait)
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

    /// Where the command's record is, if the projector still has its outcome.
    pub async fn position_of(&self, request: &CommandRequest<A>) -> Option<Position> {
        let outcome = self
            .projector
            .outcome(
                self.resource,
                request.command_id,
                request.aggregate_id,
                None,
                Duration::ZERO,
            )
            .await
            .ok()??;
        Some(Position {
            partition: outcome.partition,
            offset: outcome.offset,
        })
    }

    /// A batch decided on the snapshot this instance remembers, on the first
    /// attempt. Only an append is trusted to it (a stale snapshot makes it a
    /// conflict); a refusal, an `If-Match` mismatch or a replay is decided
    /// again on the projector's state.
    fn remembered(
        &self,
        request: &CommandRequest<A>,
        attempt: u32,
    ) -> Option<(SnapshotOf<A>, CommandBatch<A::Event>)> {
        if attempt > 1 {
            return None;
        }
        let snapshot = self.snapshots.get(&request.aggregate_id)?;
        match decide_on(request, &snapshot) {
            Ok(Decision::Append(batch)) => Some((snapshot, batch)),
            _ => None,
        }
    }

    /// The entity's state from the projector (past `after_offset`, if
    /// given), remembered for the next command.
    async fn read(
        &self,
        id: Uuid,
        after_offset: Option<i64>,
        wait: Wait,
    ) -> Result<SnapshotOf<A>, ProjectorError> {
        let wait = Wait {
            after_offset,
            ..wait
        };
        let snapshot = self.projector.snapshot(self.resource, id, wait).await?;
        self.snapshots.put(id, &snapshot);
        Ok(snapshot)
    }

    /// The entity's state once the projector has folded past `offset`.
    pub async fn state_after(
        &self,
        id: Uuid,
        offset: i64,
        wait: Wait,
    ) -> Result<SnapshotOf<A>, ProjectorError> {
        self.read(id, Some(offset), wait).await
    }
}

/// Checks a command against a snapshot and decides it: the answer at once
/// (already accepted, or nothing to change), or a batch to append.
fn decide_on<A: Aggregate>(
    request: &CommandRequest<A>,
    snapshot: &SnapshotOf<A>,
) -> Result<Decision<A>, ExecuteError<A::Error>> {
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
    let events = A::decide(&request.command, &snapshot.state).map_err(ExecuteError::Rejected)?;
    let meta = CommandMeta {
        aggregate_id: request.aggregate_id,
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
