//! The consumer of every entity's `.changes` topic: each batch of records is
//! turned into effects (one per destination), recorded pending in one SQL
//! statement, and only then are the batch's offsets committed. Receivers are
//! never waited for here, so a slow or absent one cannot hold up the input.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use event_store::store::QuietEof;
use event_store::trace_context::TraceParent;
use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use service_kit::retry::Backoff;
use tokio::sync::{Notify, watch};

use crate::Metrics;
use crate::dead_letters::{DeadLetters, pause};
use crate::effects::{Effect, EffectsOf, Kind};
use crate::ledger::{Ledger, Pending, SMTP};

/// Records in one batch at most.
const MAX_BATCH: usize = 500;
/// How long a batch waits for more records once it has one.
const LINGER: Duration = Duration::from_millis(20);

/// One record of a changes topic.
struct Record {
    topic: Arc<str>,
    effects_of: EffectsOf,
    partition: i32,
    offset: i64,
    key: Vec<u8>,
    payload: Vec<u8>,
    /// The trace the change record carries (the fold's span).
    trace: Option<TraceParent>,
}

/// The changes topics' consumer. The end of a partition is an event ingest
/// uses (its position is then past the last transaction marker), not a
/// failure to log.
pub type ChangesConsumer = StreamConsumer<QuietEof>;

/// Why ingesting stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Kafka refused a commit or the consumer failed.
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
}

/// Reads the changes topics into the effects table.
pub struct Ingest {
    pub(crate) consumer: Arc<ChangesConsumer>,
    /// The effects of each changes topic's records.
    pub(crate) sources: HashMap<Arc<str>, EffectsOf>,
    /// Where webhooks go: each is recorded once per endpoint.
    pub(crate) webhook_urls: Vec<String>,
    pub(crate) ledger: Ledger,
    pub(crate) dead_letters: DeadLetters,
    pub(crate) metrics: Arc<Metrics>,
    /// Told after each batch is recorded: the delivery lanes look at once.
    pub(crate) recorded: Arc<Notify>,
}

impl Ingest {
    /// Records batch after batch until `stopping` turns true; a batch cut
    /// short is not committed, and is read again after a restart (its
    /// effects recorded then are found there already).
    pub async fn run(self, mut stopping: watch::Receiver<bool>) -> Result<(), IngestError> {
        loop {
            let batch = tokio::select! {
                _ = stopping.wait_for(|stop| *stop) => return Ok(()),
                batch = self.next_batch() => batch,
            };
            let Ok(effects) = self.effects(&batch, &stopping).await else {
                return Ok(());
            };
            if self.record(&effects, &stopping).await.is_err() {
                return Ok(());
            }
            if !effects.is_empty() {
                self.recorded.notify_waiters();
            }
            // Every record the consumer handed out is recorded now, so its
            // positions can be committed.
            if let Err(error) = event_store::positions::commit_positions(&*self.consumer) {
                // After a rebalance the new owner reads these again; their
                // effects are in the table already and are not added twice.
                tracing::warn!(%error, "offset commit failed");
            }
        }
    }

    /// Up to [`MAX_BATCH`] records: the first awaited, the rest while they
    /// keep coming. A partition's end ends a batch (an empty one if nothing
    /// came before it), so the position past its last marker is committed.
    async fn next_batch(&self) -> Vec<Record> {
        let mut batch = Vec::new();
        let deadline = tokio::time::sleep(LINGER);
        tokio::pin!(deadline);
        while batch.len() < MAX_BATCH {
            let message = if batch.is_empty() {
                self.consumer.recv().await
            } else {
                tokio::select! {
                    message = self.consumer.recv() => message,
                    () = &mut deadline => break,
                }
            };
            let message = match message {
                Ok(message) => message,
                Err(KafkaError::PartitionEOF(_)) => break,
                Err(error) => {
                    tracing::warn!(%error, "consumer error");
                    continue;
                }
            };
            let Some((topic, effects_of)) = self.sources.get_key_value(message.topic()) else {
                tracing::warn!(
                    topic = message.topic(),
                    "a record of a topic not subscribed to"
                );
                continue;
            };
            batch.push(Record {
                topic: topic.clone(),
                effects_of: *effects_of,
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().unwrap_or_default().to_vec(),
                payload: message.payload().unwrap_or_default().to_vec(),
                trace: message.headers().and_then(|headers| {
                    TraceParent::from_headers(
                        headers.iter().filter_map(|h| Some((h.key, h.value?))),
                    )
                }),
            });
        }
        batch
    }

    /// The batch's effects in log order; records that are not change
    /// records are dead-lettered.
    async fn effects(
        &self,
        batch: &[Record],
        stopping: &watch::Receiver<bool>,
    ) -> Result<Vec<Effect>, crate::dead_letters::Stopping> {
        let mut effects = Vec::new();
        for record in batch {
            match (record.effects_of)(&record.payload, !self.webhook_urls.is_empty()) {
                Ok(of_record) => effects.extend(of_record.into_iter().map(|mut effect| {
                    // The fold's span: each delivery attempt is a child of it.
                    effect.traceparent = record.trace.map(|t| t.to_string());
                    effect
                })),
                Err(error) => {
                    tracing::warn!(
                        topic = &*record.topic,
                        partition = record.partition,
                        offset = record.offset,
                        %error,
                        "not a change record: dead-lettered"
                    );
                    self.dead_letters
                        .append(&record.key, &record.payload, &error.to_string(), stopping)
                        .await?;
                }
            }
        }
        Ok(effects)
    }

    /// Records the effects pending, retrying while PostgreSQL is away.
    async fn record(
        &self,
        effects: &[Effect],
        stopping: &watch::Receiver<bool>,
    ) -> Result<(), crate::dead_letters::Stopping> {
        let pending: Vec<Pending<'_>> = effects
            .iter()
            .flat_map(|effect| {
                let destinations: Vec<&str> = match effect.kind {
                    Kind::Email => vec![SMTP],
                    Kind::Webhook => self.webhook_urls.iter().map(String::as_str).collect(),
                };
                destinations.into_iter().map(move |destination| Pending {
                    effect,
                    destination,
                })
            })
            .collect();
        let mut backoff = Backoff::default();
        loop {
            match self.ledger.record(&pending).await {
                Ok(new) => {
                    for kind in [Kind::Email, Kind::Webhook] {
                        let asked = pending.iter().filter(|p| p.effect.kind == kind).count();
                        let recorded = new.iter().filter(|k| *k == kind.as_str()).count();
                        self.metrics.effects(kind, "recorded", recorded);
                        // Recorded before: a replay.
                        self.metrics
                            .effects(kind, "skipped", asked.saturating_sub(recorded));
                    }
                    return Ok(());
                }
                Err(error) => {
                    tracing::warn!(%error, "effects table unavailable; retrying");
                    pause(backoff.next_delay(), stopping).await?;
                }
            }
        }
    }
}
