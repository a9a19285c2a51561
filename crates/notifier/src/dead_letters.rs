//! The notifier's dead-letter topic: change records it cannot read, and
//! effects given up, each with its reason.

use std::sync::Arc;

use event_store::{AppendRecord, Appender};
use service_kit::retry::Backoff;
use tokio::sync::watch;

use crate::Metrics;
use crate::ledger::Due;

/// Appends to `<prefix>.notifier.dlq`.
#[derive(Clone)]
pub struct DeadLetters {
    pub(crate) appender: Appender,
    pub(crate) topic: String,
    pub(crate) metrics: Arc<Metrics>,
}

/// The notifier is stopping: the dead letter was not written.
#[derive(Debug)]
pub struct Stopping;

impl DeadLetters {
    /// An effect given up after `attempts`.
    pub async fn effect(
        &self,
        due: &Due,
        attempts: u32,
        reason: &str,
        stopping: &watch::Receiver<bool>,
    ) -> Result<(), Stopping> {
        let effect = &due.effect;
        let body = serde_json::json!({
            "effect_id": effect.id,
            "destination": due.destination,
            "kind": effect.kind.as_str(),
            "entity_type": effect.entity_type,
            "entity_id": effect.entity_id,
            "event_id": effect.event_id,
            "event_type": effect.event_type,
            "attempts": attempts,
            "reason": reason,
        });
        self.append(
            effect.entity_id.to_string().as_bytes(),
            body.to_string().as_bytes(),
            reason,
            stopping,
        )
        .await
    }

    /// Appends, retrying until Kafka takes it (an effect is recorded failed
    /// only once its dead letter is safe).
    pub async fn append(
        &self,
        key: &[u8],
        payload: &[u8],
        reason: &str,
        stopping: &watch::Receiver<bool>,
    ) -> Result<(), Stopping> {
        let mut backoff = Backoff::default();
        loop {
            let record = AppendRecord {
                topic: self.topic.clone(),
                key: key.to_vec(),
                payload: payload.to_vec(),
                headers: vec![("dlq.reason".into(), reason.as_bytes().to_vec())],
            };
            match self.appender.append(record).await {
                Ok(_) => {
                    self.metrics.dead_lettered.inc();
                    return Ok(());
                }
                Err(error) => {
                    tracing::warn!(%error, "dead-letter append failed; retrying");
                    pause(backoff.next_delay(), stopping).await?;
                }
            }
        }
    }
}

/// Waits, unless the notifier is stopping.
pub async fn pause(
    wait: std::time::Duration,
    stopping: &watch::Receiver<bool>,
) -> Result<(), Stopping> {
    let mut stopping = stopping.clone();
    tokio::select! {
        _ = stopping.wait_for(|stop| *stop) => Err(Stopping),
        () = tokio::time::sleep(wait) => Ok(()),
    }
}
