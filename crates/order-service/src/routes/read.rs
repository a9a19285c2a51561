//! Reading one entity's current state from the projector, for any entity
//! type: with `?min_version=`, once the entity has reached that version.

use std::time::Duration;

use axum::http::StatusCode;
use domain::aggregate::{Aggregate, Snapshot};
use service_kit::Problem;
use uuid::Uuid;

use crate::execute::Executor;
use crate::projector::{ProjectorError, Wait};

/// How long `?min_version=` may wait.
pub const MAX_READ_WAIT: Duration = Duration::from_secs(10);

/// The snapshot of entity `id` (the empty one if it does not exist), or the
/// problem to answer: 504 when `min_version` did not arrive in time, 503
/// while the projector is away.
pub async fn current<A: Aggregate>(
    executor: &Executor<A>,
    id: Uuid,
    min_version: Option<u64>,
) -> Result<Snapshot<A::State>, Problem> {
    let wait = Wait {
        min_version,
        timeout: MAX_READ_WAIT,
        ..Wait::default()
    };
    match executor
        .projector
        .snapshot(executor.resource, id, wait)
        .await
    {
        Ok(snapshot) => Ok(snapshot),
        Err(ProjectorError::TimedOut) => Err(Problem::new(StatusCode::GATEWAY_TIMEOUT)
            .detail(format!(
                "{} {id} did not reach version {} in time",
                A::TYPE,
                min_version.unwrap_or(0)
            ))
            .retry_after(1)),
        Err(error) => {
            tracing::warn!(error = %service_kit::problem::error_chain(&error), "projector unavailable");
            Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                .detail(format!(
                    "{} state is temporarily unavailable; retry",
                    A::TYPE
                ))
                .retry_after(1))
        }
    }
}

/// A read model query failed: 503, retry.
pub fn model_unavailable(error: sqlx::Error) -> Problem {
    tracing::warn!(error = %service_kit::problem::error_chain(&error), "read model unavailable");
    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .detail("the list is temporarily unavailable; retry")
        .retry_after(1)
}
