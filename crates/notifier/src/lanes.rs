//! Delivery: one lane per destination (the SMTP relay, each webhook
//! endpoint), so a slow or absent receiver delays only its own effects.
//!
//! A lane claims the due effects of its destination from the effects table
//! (of each entity only the earliest unsettled one, so an entity's effects
//! arrive in log order), attempts them concurrently, and records each
//! outcome: sent; retried later on the schedule (exponential with jitter,
//! or the receiver's `Retry-After`); or, past the schedule, dead-lettered
//! and failed.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use event_store::trace_context::TraceParent;
use event_store::trace_context::hop::{self, Hop};
use opentelemetry::KeyValue;
use service_kit::retry::Backoff;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::Metrics;
use crate::dead_letters::{DeadLetters, Stopping, pause};
use crate::delivery::{Attempt, Deliverer, backoff};
use crate::effects::Kind;
use crate::ledger::{Due, Ledger, Mode};

/// How long a lane sleeps with nothing due before it looks again (another
/// instance or an operator may have made something due).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// A claim outlives the attempt's timeout by this much.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The retry schedule and concurrency.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Attempts per effect at most.
    pub max_attempts: u32,
    /// No attempt starts later than this after the effect was recorded.
    pub retry_for: Duration,
    /// The first retry's wait; it doubles per attempt.
    pub base_backoff: Duration,
    /// The longest wait between attempts (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// Effects attempted at once per destination.
    pub concurrency: usize,
    /// Delivery mode of e-mails.
    pub email_mode: Mode,
    /// Delivery mode of webhooks.
    pub webhook_mode: Mode,
}

impl Policy {
    /// The wait before the next attempt after `attempts` failed ones, or
    /// `None` when the schedule is spent.
    fn next_wait(
        &self,
        due: &Due,
        attempts: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let wait = retry_after.map_or_else(
            || backoff(self.base_backoff, attempts - 1, self.max_backoff),
            |after| after.min(self.max_backoff),
        );
        let elapsed = (Utc::now() - due.created_at).to_std().unwrap_or_default();
        (elapsed + wait <= self.retry_for).then_some(wait)
    }
}

/// One destination's lane.
pub struct Lane {
    pub(crate) destination: String,
    pub(crate) ledger: Ledger,
    pub(crate) deliverer: Deliverer,
    pub(crate) dead_letters: DeadLetters,
    pub(crate) policy: Policy,
    pub(crate) metrics: Arc<Metrics>,
    /// Told when new effects are recorded.
    pub(crate) recorded: Arc<Notify>,
}

impl Lane {
    /// Delivers until `stopping` turns true; attempts in flight then are
    /// left to their leases (and made again after the restart: at least once).
    pub async fn run(self, stopping: watch::Receiver<bool>) {
        let span = tracing::info_span!("lane", destination = %self.destination);
        let lane = Arc::new(self);
        async move {
            let mut backoff = Backoff::default();
            while !*stopping.borrow() {
                // Registered before the claim, so a batch recorded meanwhile wakes it.
                let recorded = lane.recorded.notified();
                tokio::pin!(recorded);
                recorded.as_mut().enable();
                let mode = lane.mode();
                let lease = lane.policy.attempt_timeout + LEASE_MARGIN;
                let claimed = lane
                    .ledger
                    .claim(&lane.destination, lane.policy.concurrency, lease, mode)
                    .await;
                let due = match claimed {
                    Ok(due) => due,
                    Err(error) => {
                        tracing::warn!(%error, "effects table unavailable; retrying");
                        if pause(backoff.next_delay(), &stopping).await.is_err() {
                            return;
                        }
                        continue;
                    }
                };
                backoff = Backoff::default();
                if due.is_empty() {
                    let idle = match lane.ledger.next_due(&lane.destination).await {
                        Ok(Some(next)) => next.min(IDLE_POLL),
                        _ => IDLE_POLL,
                    };
                    let mut stop = stopping.clone();
                    tokio::select! {
                        () = recorded => {}
                        () = tokio::time::sleep(idle) => {}
                        _ = stop.wait_for(|stop| *stop) => return,
                    }
                    continue;
                }
                let mut attempts = JoinSet::new();
                for due in due {
                    let (lane, stopping) = (lane.clone(), stopping.clone());
                    attempts.spawn(async move { lane.deliver(due, &stopping).await });
                }
                while let Some(attempt) = attempts.join_next().await {
                    if let Err(error) = attempt {
                        tracing::error!(%error, "a delivery task failed");
                    }
                }
            }
        }
        .instrument(span)
        .await;
    }

    fn mode(&self) -> Mode {
        if self.destination == crate::ledger::SMTP {
            self.policy.email_mode
        } else {
            self.policy.webhook_mode
        }
    }

    /// One attempt at a claimed effect, and its outcome recorded (retrying
    /// PostgreSQL while it is away).
    async fn deliver(&self, mut due: Due, stopping: &watch::Receiver<bool>) {
        // This attempt is a span of the trace that caused the effect, a child
        // of the fold that recorded its event; the e-mail or webhook carries
        // it. Unexported, its id derives from the event, the same on retries.
        let fold = due
            .effect
            .traceparent
            .as_deref()
            .and_then(TraceParent::parse);
        let mut hop = fold.map(|fold| {
            let salt = due.effect.kind as u8 + 1;
            Hop::start(
                hop::Kind::Client,
                Some(&fold),
                || fold.child_for(&due.effect.event_id, salt),
                || self.effect_span(&due),
            )
        });
        let trace = hop.as_ref().map(Hop::trace);
        due.effect.traceparent = trace.map(|t| t.to_string());
        let span = tracing::info_span!(
            "effect",
            effect = %due.effect.id,
            entity_id = %due.effect.entity_id,
            trace_id = trace.map(|t| t.trace_id_hex()),
            span_id = trace.map(|t| t.span_id_hex()),
        );
        let outcome = self.deliver_in(due, stopping).instrument(span).await;
        if let (Some(hop), Some(failure)) = (&mut hop, outcome) {
            hop.set_error(|| failure);
        }
    }

    /// The delivery span's name and attributes.
    fn effect_span(&self, due: &Due) -> (String, Vec<KeyValue>) {
        let kind = due.effect.kind.as_str();
        let mut attributes = vec![
            KeyValue::new("effect.id", due.effect.id.clone()),
            KeyValue::new("effect.kind", kind),
            KeyValue::new("effect.attempt", i64::from(due.attempts) + 1),
            KeyValue::new("entity.id", due.effect.entity_id.to_string()),
            KeyValue::new("event.type", due.effect.event_type.clone()),
        ];
        attributes.extend(destination_attributes(&self.destination));
        (format!("deliver {kind}"), attributes)
    }

    /// Delivers and records the outcome; returns why the attempt failed.
    async fn deliver_in(&self, due: Due, stopping: &watch::Receiver<bool>) -> Option<String> {
        let mut backoff = Backoff::default();
        let outcome = self.attempt(&due).await;
        let failure = match &outcome {
            Attempt::Delivered => None,
            Attempt::Gone(reason) | Attempt::Permanent(reason) => Some(reason.clone()),
            Attempt::Retry { error, .. } => Some(error.clone()),
        };
        loop {
            match self.settle(&due, &outcome, stopping).await {
                Ok(()) => return failure,
                Err(Unsettled::Stopping) => return failure,
                Err(Unsettled::Database(error)) => {
                    tracing::warn!(effect = %due.effect.id, %error, "effects table unavailable; retrying");
                    if pause(backoff.next_delay(), stopping).await.is_err() {
                        return failure;
                    }
                }
            }
        }
    }

    async fn attempt(&self, due: &Due) -> Attempt {
        if due.effect.kind == Kind::Webhook {
            match self.ledger.is_disabled(&due.destination).await {
                Ok(false) => {}
                Ok(true) => {
                    return Attempt::Permanent(format!(
                        "{} is disabled (it answered 410 Gone)",
                        due.destination
                    ));
                }
                Err(error) => {
                    return Attempt::Retry {
                        after: None,
                        error: format!("checking the endpoint: {error}"),
                    };
                }
            }
        }
        self.deliverer.attempt(&due.effect, &due.destination).await
    }

    async fn settle(
        &self,
        due: &Due,
        outcome: &Attempt,
        stopping: &watch::Receiver<bool>,
    ) -> Result<(), Unsettled> {
        let attempts = due.attempts + 1;
        let effect = &due.effect.id;
        match outcome {
            Attempt::Delivered => {
                self.ledger.sent(due, attempts).await?;
                let since = (Utc::now() - due.created_at).as_seconds_f64();
                self.metrics.delivered(due.effect.kind, since);
                tracing::info!(%effect, attempts, "sent");
                Ok(())
            }
            Attempt::Gone(reason) => {
                // Disabled first, so what fails from now on is what it missed.
                self.ledger
                    .disable_endpoint(&due.destination, reason)
                    .await?;
                self.give_up(due, attempts, reason, stopping).await
            }
            Attempt::Permanent(reason) => self.give_up(due, attempts, reason, stopping).await,
            Attempt::Retry { after, error } => {
                let wait = match self.mode() {
                    Mode::AtMostOnce => None,
                    Mode::AtLeastOnce => self.policy.next_wait(due, attempts, *after),
                };
                let Some(wait) = wait else {
                    return self.give_up(due, attempts, error, stopping).await;
                };
                self.ledger.retry(due, attempts, wait, error).await?;
                self.metrics.effects(due.effect.kind, "retried", 1);
                tracing::warn!(%effect, attempts, ?wait, %error, "attempt failed; retrying");
                Ok(())
            }
        }
    }

    /// Dead-letters the effect, then records it failed.
    async fn give_up(
        &self,
        due: &Due,
        attempts: u32,
        reason: &str,
        stopping: &watch::Receiver<bool>,
    ) -> Result<(), Unsettled> {
        tracing::warn!(effect = %due.effect.id, attempts, %reason, "effect failed: dead-lettered");
        self.dead_letters
            .effect(due, attempts, reason, stopping)
            .await?;
        self.ledger.failed(due, attempts, reason).await?;
        self.metrics.effects(due.effect.kind, "failed", 1);
        Ok(())
    }
}

/// Why an outcome is not recorded yet.
#[derive(Debug, thiserror::Error)]
enum Unsettled {
    #[error("effects table: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stopping")]
    Stopping,
}

impl From<Stopping> for Unsettled {
    fn from(_: Stopping) -> Self {
        Unsettled::Stopping
    }
}

/// Where a delivery goes, by OpenTelemetry's conventions: a webhook's URL
/// as `url.full` and its host and port as `server.*`; the SMTP relay's
/// lane by its name.
fn destination_attributes(destination: &str) -> Vec<KeyValue> {
    let Ok(url) = reqwest::Url::parse(destination) else {
        return vec![KeyValue::new("effect.destination", destination.to_owned())];
    };
    let mut attributes = vec![KeyValue::new("url.full", destination.to_owned())];
    if let Some(host) = url.host_str() {
        attributes.push(KeyValue::new("server.address", host.to_owned()));
    }
    if let Some(port) = url.port_or_known_default() {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(attributes: &[KeyValue]) -> Vec<(String, String)> {
        attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.as_str().into_owned()))
            .collect()
    }

    #[test]
    fn a_webhook_is_named_by_its_url_host_and_port() {
        let attributes = destination_attributes("https://hooks.example.com/orders?x=1");
        assert_eq!(
            named(&attributes),
            [
                (
                    "url.full".into(),
                    "https://hooks.example.com/orders?x=1".into()
                ),
                ("server.address".into(), "hooks.example.com".into()),
                ("server.port".into(), "443".into()),
            ]
        );
    }

    #[test]
    fn the_smtp_lane_is_named_as_a_destination_not_an_address() {
        let attributes = destination_attributes(crate::ledger::SMTP);
        assert_eq!(
            named(&attributes),
            [("effect.destination".into(), crate::ledger::SMTP.into())]
        );
    }
}
