//! Group commit: concurrent appends share one Kafka transaction.
//!
//! One thread owns the transactional producer. Callers queue records and
//! await their offsets; the thread takes everything queued (lingering briefly
//! for more), appends it in one transaction and answers each caller. A failed
//! transaction fails every caller in it and commits nothing, so no caller's
//! records are ever half-written; a fatal error (say, fenced) rebuilds the
//! producer for the next batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::KafkaConfig;
use crate::metrics::AppendMetrics;
use crate::transaction::{Appended, OutgoingRecord, TransactionalProducer, TxError, TxErrorKind};

/// How the appender batches.
#[derive(Clone, Copy, Debug)]
pub struct AppenderSettings {
    /// How long the first request of a batch waits for company.
    pub linger: Duration,
    /// The most records in one transaction.
    pub max_batch: usize,
}

impl Default for AppenderSettings {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(1),
            max_batch: 1_000,
        }
    }
}

/// A record to append, owned so it can cross to the appender's thread.
#[derive(Clone, Debug)]
pub struct AppendRecord {
    /// Target topic.
    pub topic: String,
    /// Partitioning key.
    pub key: Vec<u8>,
    /// The value.
    pub payload: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The transaction did not commit; nothing of it is visible. Retrying is safe.
    #[error("the append was not committed: {0}")]
    NotCommitted(String),
    /// The appender has shut down.
    #[error("the appender has stopped")]
    Stopped,
}

struct Request {
    record: AppendRecord,
    reply: oneshot::Sender<Result<Appended, AppendError>>,
}

/// Appends records in shared transactions. Cheap to clone.
#[derive(Clone)]
pub struct Appender {
    requests: mpsc::Sender<Request>,
    transactions: Arc<AtomicU64>,
    metrics: AppendMetrics,
    _thread: Arc<JoinGuard>,
}

/// Lets the thread finish its last batch when the last handle goes.
struct JoinGuard(Option<JoinHandle<()>>);

impl Drop for JoinGuard {
    fn drop(&mut self) {
        // The sender side is dropped with the last `Appender`, so the thread's
        // receive loop ends; a panic there has already been logged.
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

impl Appender {
    /// Registers the transactional id and starts the appender's thread.
    pub fn start(
        config: &KafkaConfig,
        transactional_id: &str,
        settings: AppenderSettings,
    ) -> Result<Self, TxError> {
        let producer = TransactionalProducer::new(config, transactional_id)?;
        let (requests, queue) = mpsc::channel();
        let transactions = Arc::new(AtomicU64::new(0));
        let metrics = AppendMetrics::default();
        let worker = Worker {
            config: config.clone(),
            producer,
            settings,
            transactions: transactions.clone(),
            metrics: metrics.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("appender".into())
            .spawn(move || worker.run(queue))
            .map_err(|e| TxError {
                kind: TxErrorKind::Fatal,
                operation: "spawn appender thread",
                code: None,
                source: rdkafka::error::KafkaError::ClientCreation(e.to_string()),
            })?;
        Ok(Self {
            requests,
            transactions,
            metrics,
            _thread: Arc::new(JoinGuard(Some(thread))),
        })
    }

    /// Appends one record; resolves once its transaction committed.
    pub async fn append(&self, record: AppendRecord) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { record, reply })
            .map_err(|_| AppendError::Stopped)?;
        answer.await.unwrap_or(Err(AppendError::Stopped))
    }

    /// Transactions committed or attempted so far.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// The durations and sizes of its transactions.
    pub fn metrics(&self) -> &AppendMetrics {
        &self.metrics
    }
}

struct Worker {
    config: KafkaConfig,
    producer: TransactionalProducer,
    settings: AppenderSettings,
    transactions: Arc<AtomicU64>,
    metrics: AppendMetrics,
}

impl Worker {
    fn run(mut self, queue: mpsc::Receiver<Request>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            let deadline = Instant::now() + self.settings.linger;
            while batch.len() < self.settings.max_batch {
                match queue.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            // A caller that stopped waiting (its request timed out while a
            // slow transaction held this thread) was told its command may not
            // have been stored; not storing it keeps its retry the only copy.
            batch.retain(|request| !request.reply.is_closed());
            if !batch.is_empty() {
                self.commit(batch);
            }
        }
    }

    fn commit(&mut self, batch: Vec<Request>) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("append", records = batch.len());
        let _entered = span.enter();
        let started = Instant::now();
        self.metrics.records.observe(batch.len() as f64);
        let attempt = || -> Result<Vec<_>, TxError> {
            self.producer.begin()?;
            let pending = batch
                .iter()
                .map(|request| {
                    let headers: Vec<(&str, &[u8])> = request
                        .record
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_slice()))
                        .collect();
                    self.producer.send_tracked(OutgoingRecord {
                        topic: &request.record.topic,
                        key: &request.record.key,
                        payload: &request.record.payload,
                        headers: &headers,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.producer.commit()?;
            Ok(pending)
        };
        let result = attempt();
        let outcome = if result.is_ok() {
            "committed"
        } else {
            "failed"
        };
        self.metrics
            .duration
            .with_label_values(&[outcome])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(pending) => {
                for (request, send) in batch.into_iter().zip(pending) {
                    let answer = match send.completed() {
                        Some(Ok(appended)) => Ok(appended),
                        // Committed, so delivered; a missing report is a client bug.
                        other => Err(AppendError::NotCommitted(format!(
                            "no delivery report: {other:?}"
                        ))),
                    };
                    let _ = request.reply.send(answer);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "append transaction failed; its callers get an error");
                self.recover(&error);
                for request in batch {
                    let _ = request
                        .reply
                        .send(Err(AppendError::NotCommitted(error.to_string())));
                }
            }
        }
    }

    /// Aborts, or replaces a producer that failed fatally (fenced included).
    fn recover(&mut self, error: &TxError) {
        let aborted = match error.kind {
            TxErrorKind::Fatal => false,
            _ => self.producer.abort().is_ok(),
        };
        if aborted {
            return;
        }
        match TransactionalProducer::new(&self.config, self.producer.transactional_id()) {
            Ok(producer) => self.producer = producer,
            Err(error) => {
                tracing::error!(%error, "could not rebuild the producer; the next batch will retry")
            }
        }
    }
}
