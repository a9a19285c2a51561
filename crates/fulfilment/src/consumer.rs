//! Reading `orders.changes`: batches of records, each order's facts carried
//! out in log order, orders concurrently; the batch's offsets are committed
//! only once every step of it has a verdict, so a crash replays facts whose
//! steps order-service then recognises.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::aggregate::{DecodeError, Envelope};
use domain::order::{Order, OrderEvent};
use event_store::store::QuietEof;
use event_store::trace_context::TraceParent;
use event_store::{KafkaConfig, StreamTopics};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
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

/// The consumer of the orders' changes topic.
pub(crate) type ChangesConsumer = StreamConsumer<QuietEof>;

/// The workflow's consumer, subscribed to the orders' changes topic, which
/// it also returns.
pub(crate) fn subscribe(
    kafka: &KafkaConfig,
    config: &Config,
) -> anyhow::Result<(ChangesConsumer, String)> {
    let topic = StreamTopics::new(&config.topics.topic_prefix).changes;
    let consumer: ChangesConsumer = kafka
        .self_positioned_consumer_config(&config.group_id())
        .set("auto.offset.reset", "earliest")
        // The end of a partition is reported, so the position past its last
        // transaction marker is committed.
        .set("enable.partition.eof", "true")
        // A dynamic member, not a static one: librdkafka fences a static member
        // whose session expired during a coordinator failover by its own new
        // join, fatally (librdkafka#3437); a dynamic one just joins again. A
        // restart costs a rebalance, and nothing is lost: offsets are
        // committed after the work.
        .create_with_context(QuietEof)
        .context("creating the consumer")?;
    consumer
        .subscribe(&[&topic])
        .with_context(|| format!("subscribing to {topic}"))?;
    Ok((consumer, topic))
}

/// Acts on the facts the subscribed `consumer` reads until `stopping`
/// turns true, `concurrency` orders at a time.
pub(crate) async fn run(
    consumer: &ChangesConsumer,
    service: OrderService,
    concurrency: usize,
    stopping: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut stop = stopping.clone();
    loop {
        let facts = tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(()),
            facts = next_batch(consumer) => facts,
        };
        let mut by_order: HashMap<Vec<u8>, Vec<Fact>> = HashMap::new();
        for fact in facts {
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
        // Every fact the consumer handed out has its verdicts now.
        if let Err(error) = event_store::positions::commit_positions(consumer) {
            // After a rebalance the new owner acts on these again; every step
            // carries its key, so nothing is done twice.
            tracing::warn!(%error, "offset commit failed");
        }
    }
}

/// Up to [`MAX_BATCH`] records: the first awaited, the rest while they keep
/// coming. A partition's end ends a batch (an empty one if nothing came
/// before it), so the position past its last marker is committed.
async fn next_batch(consumer: &ChangesConsumer) -> Vec<Fact> {
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
            Err(KafkaError::PartitionEOF(_)) => break,
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
            service.metrics().fact("skipped");
            return Ok(());
        }
    };
    let Some(order) = order else {
        service.metrics().fact("nothing");
        return Ok(());
    };
    let plan = plan(&envelope.event, &order);
    service.metrics().fact(plan.name());
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
