//! Retrying what depends on a server that may be away (a database not up
//! yet, a broker restarting) without ever holding up a shutdown: the one
//! backoff every service uses, and [`until_ok`] for start-up steps.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Exponential backoff: [`Backoff::FIRST`], then twice as long after each
/// failure, at most [`Backoff::MAX`]. Start a new one after a success.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Backoff {
    /// The first wait.
    pub const FIRST: Duration = Duration::from_millis(100);
    /// The longest wait: a server that comes back is noticed within it.
    pub const MAX: Duration = Duration::from_secs(5);

    /// The wait before the next attempt; the one after it is twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }

    /// Sleeps the next delay; true when `stop` turned true first.
    pub async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => true,
            () = tokio::time::sleep(delay) => false,
        }
    }
}

/// Runs `attempt` until it succeeds, waiting a [`Backoff`] after each
/// failure. Returns `None` as soon as `stop` turns true, even in the middle
/// of an attempt.
pub async fn until_ok<T, E, F>(
    what: &str,
    stop: &mut watch::Receiver<bool>,
    mut attempt: impl FnMut() -> F,
) -> Option<T>
where
    E: Display,
    F: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::default();
    loop {
        let result = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return None,
            result = attempt() => result,
        };
        match result {
            Ok(value) => return Some(value),
            Err(error) => tracing::warn!(%error, "{what} failed; retrying"),
        }
        if backoff.wait(stop).await {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Backoff, until_ok};
    use tokio::sync::watch;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[tokio::test(start_paused = true)]
    async fn it_retries_until_success_and_gives_up_on_stop() {
        let (_keep, mut stop) = watch::channel(false);
        let mut calls = 0;
        let value = until_ok("step", &mut stop, || {
            calls += 1;
            let result = if calls < 3 { Err("not yet") } else { Ok(calls) };
            async move { result }
        })
        .await;
        assert_eq!(value, Some(3));

        let (stopper, mut stop) = watch::channel(false);
        stopper.send_replace(true);
        let value: Option<()> =
            until_ok("step", &mut stop, || async { Err::<(), _>("never") }).await;
        assert_eq!(value, None);
    }
}
