//! Waiting on a condition, with a bound, instead of sleeping and hoping.
//!
//! Every wait in the tests goes through here, so each one names what it
//! waits for and how long it may take.

use std::time::{Duration, Instant};

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Ok`; after `timeout`, its last `Err`,
/// which says what it saw instead.
pub async fn until<T, E>(
    timeout: Duration,
    check: impl AsyncFnMut() -> Result<T, E>,
) -> Result<T, E> {
    until_every(POLL, timeout, check).await
}

/// [`until`], looking again every `every`: for a wait whose length is
/// itself the measurement.
pub async fn until_every<T, E>(
    every: Duration,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Deadline::new(every, timeout);
    loop {
        let seen = match check().await {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        if !deadline.pause().await {
            return Err(seen);
        }
    }
}

/// A bound on a loop that looks again and again, for loops the helpers
/// above do not fit (a future spawned onto the runtime must be `Send`,
/// which an async closure's borrow can keep it from being).
pub struct Deadline {
    every: Duration,
    at: Instant,
}

impl Deadline {
    pub fn new(every: Duration, timeout: Duration) -> Self {
        Self {
            every,
            at: Instant::now() + timeout,
        }
    }

    /// Waits before the next look; `false`, at once, when time is up.
    pub async fn pause(&self) -> bool {
        if Instant::now() >= self.at {
            return false;
        }
        tokio::time::sleep(self.every).await;
        true
    }
}

/// Polls `check` until it returns `Some`; `None` after `timeout`.
pub async fn within<T>(timeout: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    until(timeout, async || check().await.ok_or(())).await.ok()
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    check: impl AsyncFnMut() -> Option<T>,
) -> T {
    within(timeout, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// [`within`] for code outside the async runtime: blocks the thread.
pub fn blocking_within<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL / 2);
    }
}
