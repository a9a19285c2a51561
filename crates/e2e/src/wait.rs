//! Waiting on a condition, with a bound, instead of sleeping and hoping.

use std::time::{Duration, Instant};

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Ok`; after `timeout`, its last `Err`,
/// which says what it saw instead.
pub async fn until<T, E>(
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(seen) if Instant::now() >= deadline => return Err(seen),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    until(timeout, async || check().await.ok_or(()))
        .await
        .unwrap_or_else(|()| panic!("timed out after {timeout:?} waiting for {what}"))
}
