//! The consumer of every entity's `.changes` topic: effects of each entity
//! in order, entities concurrently (bounded), offsets committed only past
//! records whose effects are all settled in the effects table.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use event_store::{AppendRecord, Appender};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::retry::Backoff;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::delivery::{Attempt, Deliverer, backoff};
use crate::effects::{Effect, EffectsOf, Kind};
use crate::ledger::{Ledger, Mode, Settled};

/// Retry policy and concurrency.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Attempts per effect before it is dead-lettered.
    pub max_attempts: u32,
    /// The first retry's wait; it doubles per attempt.
    pub base_backoff: Duration,
    /// The longest wait between attempts (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// Entities handled at once.
    pub concurrency: usize,
    /// Delivery mode of e-mails.
    pub email_mode: Mode,
    /// Delivery mode of webhooks.
    pub webhook_mode: Mode,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Effects delivered.
    pub sent: AtomicU64,
    /// Attempts that failed and were retried.
    pub retried: AtomicU64,
    /// Effects given up (dead-lettered or endpoint gone).
    pub failed: AtomicU64,
    /// Records written to the notifier's dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Effects skipped because the table had them settled (replays).
    pub skipped: AtomicU64,
}

/// What one record needs to be settled.
struct Work {
    topic: Arc<str>,
    effects_of: EffectsOf,
    partition: i32,
    offset: i64,
    key: Vec<u8>,
    payload: Vec<u8>,
}

/// Runs the notifier's loop.
pub struct Worker {
    pub(crate) consumer: Arc<StreamConsumer>,
    /// The effects of each changes topic's records.
    pub(crate) sources: HashMap<Arc<str>, EffectsOf>,
    pub(crate) deliverer: Deliverer,
    pub(crate) ledger: Ledger,
    pub(crate) dlq: Appender,
    pub(crate) dlq_topic: String,
    pub(crate) policy: Policy,
    pub(crate) metrics: Arc<Metrics>,
    /// Turns true on shutdown: waits between attempts end at once, and the
    /// batch in progress is left uncommitted (its unsettled effects are
    /// performed again after the restart: at least once).
    pub(crate) stopping: watch::Receiver<bool>,
}

/// An effect was left unsettled because the notifier is stopping.
#[derive(Debug)]
struct Stopping;

/// Why an effect is not settled yet.
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

/// Why the loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Kafka refused a commit or the consumer failed.
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
}

impl Worker {
    /// Settles records batch by batch until shut down.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
        let this = Arc::new(self);
        loop {
            let batch = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
                batch = this.next_batch() => batch,
            };
            let mut next: BTreeMap<(Arc<str>, i32), i64> = BTreeMap::new();
            for work in &batch {
                next.insert((work.topic.clone(), work.partition), work.offset + 1);
            }
            // One task per entity, its records in log order; entities in parallel.
            let mut by_entity: HashMap<(Arc<str>, Vec<u8>), Vec<Work>> = HashMap::new();
            for work in batch {
                by_entity
                    .entry((work.topic.clone(), work.key.clone()))
                    .or_default()
                    .push(work);
            }
            let permits = Arc::new(Semaphore::new(this.policy.concurrency.max(1)));
            let mut tasks = JoinSet::new();
            for (_, records) in by_entity {
                let (this, permits) = (this.clone(), permits.clone());
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    for work in records {
                        this.settle(&work).await;
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            if *this.stopping.borrow() {
                // Some effects of this batch may be unsettled: no commit.
                return Ok(());
            }

            if next.is_empty() {
                continue;
            }
            let mut offsets = TopicPartitionList::new();
            for ((topic, partition), offset) in next {
                offsets.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
            }
            if let Err(error) = this.consumer.commit(&offsets, CommitMode::Sync) {
                // After a rebalance the new owner replays these; the table
                // keeps that from repeating what was settled.
                tracing::warn!(%error, "offset commit failed");
            }
        }
    }

    /// Up to 500 records: the first awaited, the rest while they keep coming
    /// (50 ms at most).
    async fn next_batch(&self) -> Vec<Work> {
        let mut batch = Vec::new();
        let deadline = tokio::time::sleep(Duration::from_millis(50));
        tokio::pin!(deadline);
        loop {
            let message = if batch.is_empty() {
                self.consumer.recv().await
            } else {
                tokio::select! {
                    message = self.consumer.recv() => message,
                    () = &mut deadline => break,
                }
            };
            match message {
                Ok(message) => {
                    let Some((topic, effects_of)) = self.sources.get_key_value(message.topic())
                    else {
                        tracing::warn!(
                            topic = message.topic(),
                            "a record of a topic not subscribed to"
                        );
                        continue;
                    };
                    batch.push(Work {
                        topic: topic.clone(),
                        effects_of: *effects_of,
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().unwrap_or_default().to_vec(),
                        payload: message.payload().unwrap_or_default().to_vec(),
                    });
                }
                Err(error) => tracing::warn!(%error, "consumer error"),
            }
            if batch.len() >= 500 {
                break;
            }
        }
        batch
    }

    /// Every effect of one record, settled (retrying PostgreSQL until it answers).
    async fn settle(&self, work: &Work) {
        let span = tracing::info_span!(
            "change",
            topic = &*work.topic,
            partition = work.partition,
            offset = work.offset
        );
        self.settle_in_span(work).instrument(span).await;
    }

    async fn settle_in_span(&self, work: &Work) {
        let effects = match (work.effects_of)(&work.payload, self.deliverer.webhook().is_some()) {
            Ok(effects) => effects,
            Err(error) => {
                tracing::warn!(%error, "not a change record: dead-lettered");
                // Stopping before it is dead-lettered: the record is read again.
                let _ = self
                    .dead_letter(&work.key, &work.payload, &error.to_string())
                    .await;
                return;
            }
        };
        for effect in effects {
            let mut backoff = Backoff::default();
            loop {
                match self.perform(&effect).await {
                    Ok(()) => break,
                    Err(Unsettled::Stopping) => return,
                    Err(Unsettled::Database(error)) => {
                        tracing::warn!(effect = %effect.id, %error, "effects table unavailable; retrying");
                        if self.pause(backoff.next_delay()).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Performs one effect unless the table has it settled.
    async fn perform(&self, effect: &Effect) -> Result<(), Unsettled> {
        if self.ledger.is_settled(effect).await? {
            self.metrics.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mode = match effect.kind {
            Kind::Email => self.policy.email_mode,
            Kind::Webhook => self.policy.webhook_mode,
        };
        let attempts_allowed = match mode {
            Mode::AtLeastOnce => self.policy.max_attempts,
            Mode::AtMostOnce => {
                if !self.ledger.claim(effect).await? {
                    return Ok(());
                }
                1
            }
        };
        if let (Kind::Webhook, Some(target)) = (effect.kind, self.deliverer.webhook())
            && self.ledger.is_disabled(&target.url).await?
        {
            return self
                .give_up(effect, 0, &format!("{} is disabled (410 Gone)", target.url))
                .await;
        }
        let mut last_error = String::new();
        for attempt in 1..=attempts_allowed {
            let outcome = match (effect.kind, self.deliverer.webhook()) {
                (Kind::Email, _) => self.deliverer.email(effect).await,
                (Kind::Webhook, Some(target)) => {
                    self.deliverer
                        .webhook_attempt(target, effect, chrono::Utc::now().timestamp())
                        .await
                }
                (Kind::Webhook, None) => Attempt::Permanent("no webhook endpoint".into()),
            };
            match outcome {
                Attempt::Delivered => {
                    self.ledger
                        .record(effect, Settled::Sent, attempt, None)
                        .await?;
                    self.metrics.sent.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(effect = %effect.id, attempt, "sent");
                    return Ok(());
                }
                Attempt::Gone(reason) => {
                    if let Some(target) = self.deliverer.webhook() {
                        self.ledger.disable_endpoint(&target.url, &reason).await?;
                    }
                    return self.give_up(effect, attempt, &reason).await;
                }
                Attempt::Permanent(reason) => return self.give_up(effect, attempt, &reason).await,
                Attempt::Retry { after, error } => {
                    last_error = error;
                    if attempt == attempts_allowed {
                        break;
                    }
                    self.metrics.retried.fetch_add(1, Ordering::Relaxed);
                    let wait = after
                        .map(|after| after.min(self.policy.max_backoff))
                        .unwrap_or_else(|| {
                            backoff(
                                self.policy.base_backoff,
                                attempt - 1,
                                self.policy.max_backoff,
                            )
                        });
                    tracing::warn!(effect = %effect.id, attempt, ?wait, error = %last_error, "attempt failed; retrying");
                    self.pause(wait).await?;
                }
            }
        }
        self.give_up(effect, attempts_allowed, &last_error).await
    }

    /// Waits, unless the notifier is stopping.
    async fn pause(&self, wait: Duration) -> Result<(), Stopping> {
        let mut stopping = self.stopping.clone();
        tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => Err(Stopping),
            () = tokio::time::sleep(wait) => Ok(()),
        }
    }

    /// Dead-letters the effect, then records it failed.
    async fn give_up(&self, effect: &Effect, attempts: u32, reason: &str) -> Result<(), Unsettled> {
        tracing::warn!(effect = %effect.id, attempts, %reason, "effect failed: dead-lettered");
        let body = serde_json::json!({
            "effect_id": effect.id,
            "kind": effect.kind.as_str(),
            "entity_type": effect.entity_type,
            "entity_id": effect.entity_id,
            "event_id": effect.event_id,
            "event_type": effect.event_type,
            "attempts": attempts,
            "reason": reason,
        });
        self.dead_letter(
            effect.entity_id.to_string().as_bytes(),
            body.to_string().as_bytes(),
            reason,
        )
        .await?;
        self.ledger
            .record(effect, Settled::Failed, attempts, Some(reason))
            .await?;
        self.metrics.failed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Appends to the dead-letter topic, retrying until Kafka takes it (an
    /// effect is recorded failed only once its dead letter is safe).
    async fn dead_letter(&self, key: &[u8], payload: &[u8], reason: &str) -> Result<(), Stopping> {
        let mut backoff = Backoff::default();
        loop {
            let record = AppendRecord {
                topic: self.dlq_topic.clone(),
                key: key.to_vec(),
                payload: payload.to_vec(),
                headers: vec![("dlq.reason".into(), reason.as_bytes().to_vec())],
            };
            match self.dlq.append(record).await {
                Ok(_) => {
                    self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(error) => {
                    tracing::warn!(%error, "dead-letter append failed; retrying");
                    self.pause(backoff.next_delay()).await?;
                }
            }
        }
    }
}
