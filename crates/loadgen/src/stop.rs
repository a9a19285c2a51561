//! When the load stops: at the deadline of `--duration`, or at Ctrl-C or
//! SIGTERM when there is none (the demo runs until its user stops it). Either
//! way the workers finish their request in flight and the summary is printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::Pacer;

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

    /// The starts of paced requests until it is time to stop.
    pub fn ticks<'a>(&'a self, pacer: &'a Pacer) -> Ticks<'a> {
        Ticks {
            stop: self,
            pacer,
            next_start: Instant::now(),
        }
    }
}

/// Request starts, each no sooner than the pacer allows after the one before.
pub struct Ticks<'a> {
    stop: &'a Stop,
    pacer: &'a Pacer,
    next_start: Instant,
}

impl Ticks<'_> {
    /// Waits for the next start and returns it; `None` once it is time to stop.
    pub async fn next(&mut self) -> Option<Instant> {
        self.stop.sleep_until(self.next_start).await;
        if self.stop.is_due() {
            return None;
        }
        let started = Instant::now();
        self.next_start = self.pacer.next_start(started).unwrap_or(started);
        Some(started)
    }
}
