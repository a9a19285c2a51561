//! The live feed: every entity's changes topic, read from its end
//! (`read_committed`: only what was accepted), each event handed to the pages
//! listening as a server-sent event. A page that connects first gets the
//! most recent events, so it is not empty until the next one.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::stream::{self, StreamExt};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

/// Events a page gets when it connects.
const RECENT: usize = 50;

/// The feed's events, as JSON, to everyone listening.
#[derive(Clone)]
pub struct Feed {
    sender: broadcast::Sender<Arc<str>>,
    recent: Arc<Mutex<VecDeque<Arc<str>>>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
            recent: Arc::default(),
        }
    }
}

impl Feed {
    fn publish(&self, item: Arc<str>) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(item.clone());
        // Nobody listening is fine.
        let _ = self.sender.send(item);
    }

    /// The recent events, then each new one, until `stopping` (so a
    /// graceful shutdown is not held up by open pages).
    pub fn stream(
        &self,
        stopping: watch::Receiver<bool>,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
        // Subscribed before the copy, so nothing falls between the two.
        let receiver = self.sender.subscribe();
        let recent: Vec<Arc<str>> = self
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let live = stream::unfold(
            (receiver, stopping),
            |(mut receiver, mut stopping)| async move {
                loop {
                    let item = tokio::select! {
                        _ = stopping.wait_for(|stop| *stop) => return None,
                        item = receiver.recv() => item,
                    };
                    match item {
                        Ok(item) => return Some((item, (receiver, stopping))),
                        // A slow page misses some; the list catches it up.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        );
        let events = stream::iter(recent)
            .chain(live)
            .map(|item| Ok(Event::default().event("change").data(&*item)));
        Sse::new(events).keep_alive(KeepAlive::default())
    }

    /// Reads the changes topics into the feed until `stopping`.
    pub async fn run(self, consumer: StreamConsumer, mut stopping: watch::Receiver<bool>) {
        loop {
            let message = tokio::select! {
                _ = stopping.wait_for(|stop| *stop) => return,
                message = consumer.recv() => message,
            };
            match message {
                Ok(message) => {
                    let item = summary(
                        message.topic(),
                        message.partition(),
                        message.offset(),
                        message.payload().unwrap_or_default(),
                    );
                    if let Some(item) = item {
                        self.publish(item.to_string().into());
                    }
                }
                Err(error) => tracing::warn!(%error, "reading the changes topics"),
            }
        }
    }
}

/// What the feed shows of a changes record: the event's envelope without its
/// state, and where it is in the log. `None` for a record that is not one.
fn summary(topic: &str, partition: i32, offset: i64, payload: &[u8]) -> Option<Value> {
    let change: Value = serde_json::from_slice(payload).ok()?;
    let event = change.get("event")?;
    Some(json!({
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "entity": event.get("aggregate_type")?,
        "id": event.get("aggregate_id")?,
        "version": event.get("version")?,
        "event_type": event.get("event_type")?,
        "occurred_at": event.get("occurred_at")?,
        "data": event.get("data")?,
    }))
}

/// Subscribes a consumer to `topics` from their end.
pub fn consumer(
    kafka: &event_store::KafkaConfig,
    group_id: &str,
    topics: &[String],
) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = kafka
        .self_positioned_consumer_config(group_id)
        .set("auto.offset.reset", "latest")
        .create()?;
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(consumer)
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn a_change_is_summarised_without_its_state_and_anything_else_is_skipped() {
        let change = br#"{"event": {"event_id": "e", "aggregate_type": "order",
            "aggregate_id": "a", "version": 2, "event_type": "OrderConfirmed",
            "schema_version": 1, "occurred_at": "2026-12-04T10:00:00Z",
            "command_id": "c", "correlation_id": "r", "data": {}},
            "state": {"big": "state"}}"#;
        let item = summary("orders.changes", 1, 7, change).expect("a change");
        assert_eq!(item["event_type"], "OrderConfirmed");
        assert_eq!(item["version"], 2);
        assert_eq!(
            (item["partition"].as_i64(), item["offset"].as_i64()),
            (Some(1), Some(7))
        );
        assert!(item.get("state").is_none());
        assert!(summary("t", 0, 0, b"not json").is_none());
        assert!(summary("t", 0, 0, br#"{"state": {}}"#).is_none());
    }
}
