//! Retrying a start-up step (a database that is not up yet) without ever
//! holding up a shutdown.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Runs `attempt` until it succeeds, waiting 100 ms after the first failure
/// and twice as long after each next one (at most 5 s). Returns `None` as
/// soon as `stop` turns true, even in the middle of an attempt.
pub async fn until_ok<T, E, F>(
    what: &str,
    stop: &mut watch::Receiver<bool>,
    mut attempt: impl FnMut() -> F,
) -> Option<T>
where
    E: Display,
    F: Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        let result = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return None,
            result = attempt() => result,
        };
        match result {
            Ok(value) => return Some(value),
            Err(error) => tracing::warn!(%error, "{what} failed; retrying in {delay:?}"),
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::until_ok;
    use tokio::sync::watch;

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
