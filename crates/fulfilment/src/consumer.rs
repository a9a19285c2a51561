//! Reading `orders.changes`: batches of records, each order's facts carried
//! out in log order, orders concurrently; the batch's offsets are committed
//! only once every step of it has a verdict, so a crash replays facts whose
//! steps order-service then recognises.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::aggregate::{DecodeError, Envelope};
use domain::order::{Order, OrderEvent};
use event_store::StreamTopics;
use event_store::trace_context::TraceParent;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Deserialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::Config;
use crate::steps::{OrderService, carry_out};
use crate::workflow::plan;

/// Records in one batch at most.
const MAX_BATCH: usize = 200;
/// How long a batch waits for more records once it has one.
const LINGER: Duration = Duration::from_millis(10);

/// A record of `orders.changes`.
#[derive(Deserialize)]
struct Change {
    event: serde_json::Value,
    state: Option<Order>,
}

/// One fact to act on.
struct Fact {
    partition: i32,
    offset: i64,
    key: Vec<u8>,
    payload: Vec<u8>,
    /// The span of the fold that recorded it: the steps continue its trace.
    trace: Option<TraceParent>,
}

/// Runs until `stopping` turns true.
pub async fn run(config: Config, stopping: watch::Receiver<bool>) -> anyhow::Result<()> {
    let kafka = config
        .topics
        .connect(&config.instance_id)
        .await
        .context("connecting to Kafka")?;
    let topic = StreamTopics::new(&config.topics.topic_prefix).changes;
    let consumer: StreamConsumer = kafka
        .self_positioned_consumer_config(&config.group_id())
        .set("auto.offset.reset", "earliest")
        // A dynamic member, not a static one: librdkafka fences a static member
        // whose session expired during a coordinator failover by its own new
        // join, fatally (librdkafka#3437); a dynamic one just joins again. A
        // restart costs a rebalance, and nothing is lost: offsets are
        // committed after the work.
        .create()
        .context("creating the consumer")?;
    consumer
        .subscribe(&[&topic])
        .with_context(|| format!("subscribing to {topic}"))?;
    let service = OrderService::new(&config.order_service_url, stopping.clone())
        .context("--order-service-url")?;
    let permits = Arc::new(Semaphore::new(
        usize::try_from(config.concurrency).unwrap_or(32),
    ));
    let mut stop = stopping.clone();
    loop {
        let facts = tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(()),
            facts = next_batch(&consumer) => facts,
        };
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut by_order: HashMap<Vec<u8>, Vec<Fact>> = HashMap::new();
        for fact in facts {
            next.insert(fact.partition, fact.offset + 1);
            by_order.entry(fact.key.clone()).or_default().push(fact);
        }
        let mut tasks = JoinSet::new();
        for (_, facts) in by_order {
            let (service, permits) = (service.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                for fact in facts {
                    let span = tracing::info_span!(
                        "fact",
                        partition = fact.partition,
                        offset = fact.offset,
                        trace_id = fact.trace.map(|t| t.trace_id_hex()),
                    );
                    act(&service, &fact).instrument(span).await?;
                }
                Ok::<(), Unfinished>(())
            });
        }
        let mut unfinished = None;
        while let Some(done) = tasks.join_next().await {
            if let Err(why) = done.unwrap_or(Err(Unfinished::Stopping)) {
                unfinished = Some(why);
            }
        }
        match unfinished {
            // Nothing of this batch is committed: it is acted on again after
            // the restart, every step with its key.
            Some(Unfinished::Stopping) => return Ok(()),
            Some(Unfinished::NewerCode(detail)) => {
                anyhow::bail!("a change record needs newer code ({detail}); upgrade to continue")
            }
            None => {}
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in next {
            offsets.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
        }
        if let Err(error) = consumer.commit(&offsets, CommitMode::Sync) {
            // After a rebalance the new owner acts on these again; every step
            // carries its key, so nothing is done twice.
            tracing::warn!(%error, "offset commit failed");
        }
    }
}

/// Up to [`MAX_BATCH`] records: the first awaited, the rest while they keep coming.
async fn next_batch(consumer: &StreamConsumer) -> Vec<Fact> {
    let mut facts = Vec::new();
    let deadline = tokio::time::sleep(LINGER);
    tokio::pin!(deadline);
    while facts.len() < MAX_BATCH {
        let message = if facts.is_empty() {
            consumer.recv().await
        } else {
            tokio::select! {
                message = consumer.recv() => message,
                () = &mut deadline => break,
            }
        };
        match message {
            Ok(message) => facts.push(Fact {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().unwrap_or_default().to_vec(),
                payload: message.payload().unwrap_or_default().to_vec(),
                trace: message.headers().and_then(|headers| {
                    TraceParent::from_headers(
                        headers.iter().filter_map(|h| Some((h.key, h.value?))),
                    )
                }),
            }),
            Err(error) => tracing::warn!(%error, "consumer error"),
        }
    }
    facts
}

/// Why a batch was not finished.
enum Unfinished {
    /// The process is stopping.
    Stopping,
    /// A record only newer code can read: acting past it could leave its
    /// order's stock wrong, so the workflow stops there, as the projector
    /// stops such a partition.
    NewerCode(String),
}

/// Carries out what one fact calls for. A record that is no change record
/// at all is skipped, as every consumer skips poison.
async fn act(service: &OrderService, fact: &Fact) -> Result<(), Unfinished> {
    let (envelope, order) = match decode(&fact.payload) {
        Ok(decoded) => decoded,
        Err(error) if error.needs_newer_code() => {
            return Err(Unfinished::NewerCode(format!(
                "partition {} offset {}: {error}",
                fact.partition, fact.offset
            )));
        }
        Err(error) => {
            tracing::warn!(%error, "not a change record: skipped");
            return Ok(());
        }
    };
    let Some(order) = order else {
        return Ok(());
    };
    let plan = plan(&envelope.event, &order);
    let service = service.continuing(fact.trace);
    carry_out(&service, order.id, envelope.event_id, plan)
        .await
        .map_err(|_| Unfinished::Stopping)
}

fn decode(payload: &[u8]) -> Result<(Envelope<OrderEvent>, Option<Order>), DecodeError> {
    let change: Change =
        serde_json::from_slice(payload).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let bytes =
        serde_json::to_vec(&change.event).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    Ok((Envelope::decode(&bytes, "order")?, change.state))
}
