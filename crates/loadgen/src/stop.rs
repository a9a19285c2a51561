//! When the load stops: at the deadline of `--duration`, or at Ctrl-C or
//! SIGTERM when there is none (the demo runs until its user stops it). Either
//! way the workers finish their request in flight and the summary is printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Shared by the workers and the progress loop.
#[derive(Clone)]
pub struct Stop {
    deadline: Option<Instant>,
    signalled: Arc<(AtomicBool, Notify)>,
}

impl Stop {
    /// Stops at `deadline`, or on Ctrl-C or SIGTERM when there is none.
    pub fn new(deadline: Option<Instant>) -> Self {
        let stop = Self {
            deadline,
            signalled: Arc::new((AtomicBool::new(false), Notify::new())),
        };
        if deadline.is_none() {
            let signalled = stop.signalled.clone();
            tokio::spawn(async move {
                service_kit::shutdown::signal().await;
                signalled.0.store(true, Ordering::SeqCst);
                signalled.1.notify_waiters();
            });
        }
        stop
    }

    /// True once it is time to stop.
    pub fn is_due(&self) -> bool {
        self.signalled.0.load(Ordering::SeqCst)
            || self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// Sleeps until `until`, waking early when a signal comes.
    pub async fn sleep_until(&self, until: Instant) {
        let notified = self.signalled.1.notified();
        if self.is_due() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => {}
            () = notified => {}
        }
    }

    /// Sleeps for `period`, waking early when a signal comes.
    pub async fn sleep(&self, period: Duration) {
        self.sleep_until(Instant::now() + period).await;
    }
}
