//! Appends command batches as order-service would, with conflicts and
//! duplicates made on purpose, and knows by construction which are accepted.

use chrono::Utc;
use domain::aggregate::{CommandBatch, CommandMeta, Snapshot, Verdict};
use domain::order::{
    CancelReason, Carrier, CustomerId, Email, LineItem, Order, OrderAggregate, OrderCommand,
    OrderEvent, Quantity, Sku, TrackingNumber, UnitPrice, decide,
};
use event_store::{Appended, KafkaConfig, OutgoingRecord, StreamTopics, TransactionalProducer};
use uuid::Uuid;

use super::Rng;

type OrderSnapshot = Snapshot<Option<Order>>;

/// What the writer meant a batch to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Decided on the current state: will be accepted.
    Fresh,
    /// Decided on an older state: will be a conflict.
    Stale,
    /// The previous command again, re-decided: will be a duplicate.
    Repeat,
}

pub struct WrittenBatch {
    pub command_id: Uuid,
    pub intent: Intent,
    pub event_ids: Vec<Uuid>,
    pub appended: Appended,
}

struct OrderModel {
    id: Uuid,
    /// Every snapshot the order went through, oldest first.
    history: Vec<OrderSnapshot>,
    last_fresh: Option<(Uuid, Vec<OrderEvent>)>,
}

pub struct Writer {
    producer: TransactionalProducer,
    topic: String,
    rng: Rng,
    orders: Vec<OrderModel>,
    pub written: Vec<WrittenBatch>,
}

impl Writer {
    pub fn new(
        kafka: &KafkaConfig,
        topics: &StreamTopics,
        orders: usize,
        seed: u64,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            producer: TransactionalProducer::new(
                kafka,
                &format!("test-writer-{}", Uuid::now_v7()),
            )?,
            topic: topics.events.clone(),
            rng: Rng::new(seed),
            orders: (0..orders)
                .map(|_| OrderModel {
                    id: Uuid::now_v7(),
                    history: vec![OrderSnapshot::default()],
                    last_fresh: None,
                })
                .collect(),
            written: Vec::new(),
        })
    }

    pub fn order_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.orders.iter().map(|o| o.id)
    }

    /// The state each order must end in, by construction.
    pub fn expected(&self, id: Uuid) -> Option<&OrderSnapshot> {
        self.orders
            .iter()
            .find(|o| o.id == id)
            .and_then(|o| o.history.last())
    }

    /// Appends `commands` batches in transactions of `per_transaction`.
    pub fn append(&mut self, commands: usize, per_transaction: usize) -> anyhow::Result<()> {
        let mut remaining = commands;
        while remaining > 0 {
            let n = remaining.min(per_transaction);
            let batches: Vec<_> = (0..n).filter_map(|_| self.next_batch()).collect();
            self.producer.begin()?;
            let mut pending = Vec::new();
            for (intent, batch) in batches {
                let key = batch.aggregate_id().to_string();
                let payload = batch.encode("order");
                let send = self.producer.send_tracked(OutgoingRecord {
                    topic: &self.topic,
                    key: key.as_bytes(),
                    payload: &payload,
                    headers: &[],
                })?;
                pending.push((intent, batch, send));
            }
            self.producer.commit()?;
            for (intent, batch, send) in pending {
                let appended = send
                    .completed()
                    .ok_or_else(|| anyhow::anyhow!("no delivery report after commit"))??;
                self.written.push(WrittenBatch {
                    command_id: batch.command_id(),
                    intent,
                    event_ids: batch.envelopes().iter().map(|e| e.event_id).collect(),
                    appended,
                });
            }
            remaining -= n;
        }
        Ok(())
    }

    /// The next offset of each partition after everything written.
    pub fn ends(&self, partitions: i32) -> Vec<i64> {
        (0..partitions)
            .map(|p| {
                self.written
                    .iter()
                    .filter(|w| w.appended.partition == p)
                    .map(|w| w.appended.offset + 1)
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    fn next_batch(&mut self) -> Option<(Intent, CommandBatch<OrderEvent>)> {
        let index = self.rng.below(self.orders.len() as u64) as usize;
        let roll = self.rng.below(100);
        let order = &self.orders[index];
        let current = order.history.last()?.clone();
        let intent = match roll {
            0..15 if order.history.len() > 2 => Intent::Stale,
            15..20 if order.last_fresh.is_some() => Intent::Repeat,
            _ => Intent::Fresh,
        };
        let meta = |command_id| CommandMeta {
            aggregate_id: order.id,
            command_id,
            correlation_id: Uuid::now_v7(),
            occurred_at: Utc::now(),
        };
        let batch = match intent {
            Intent::Repeat => {
                let (command_id, events) = order.last_fresh.clone()?;
                CommandBatch::new(meta(command_id), current.version, events, Uuid::now_v7).ok()?
            }
            Intent::Stale | Intent::Fresh => {
                let base = if intent == Intent::Stale {
                    let older = self.rng.below(order.history.len() as u64 - 1) as usize;
                    order.history[older].clone()
                } else {
                    current.clone()
                };
                let events = (0..20).find_map(|_| {
                    decide(&random_command(&mut self.rng, order.id), &base.state).ok()
                })?;
                CommandBatch::new(meta(Uuid::now_v7()), base.version, events, Uuid::now_v7).ok()?
            }
        };
        if intent == Intent::Fresh {
            let (next, verdict) = current.apply::<OrderAggregate>(&batch);
            assert!(
                matches!(verdict, Verdict::Accepted { .. }),
                "a fresh batch is accepted by construction"
            );
            let order = &mut self.orders[index];
            order.history.push(next);
            order.last_fresh = Some((
                batch.command_id(),
                batch.envelopes().iter().map(|e| e.event.clone()).collect(),
            ));
        }
        Some((intent, batch))
    }
}

fn random_command(rng: &mut Rng, order_id: Uuid) -> OrderCommand {
    let item = |rng: &mut Rng| LineItem {
        sku: Sku::parse(format!("SKU-{}", rng.below(5))).expect("valid"),
        quantity: Quantity::parse(1 + rng.below(3)).expect("valid"),
        unit_price: UnitPrice::parse(100 * (1 + rng.below(3))).expect("valid"),
    };
    match rng.below(10) {
        0 | 1 => OrderCommand::Place {
            order_id,
            customer_id: CustomerId::parse(format!("customer-{}", rng.below(20))).expect("valid"),
            email: Email::parse("buyer@example.com").expect("valid"),
            items: vec![item(rng)],
        },
        2 | 3 => OrderCommand::AddItem { item: item(rng) },
        4 => OrderCommand::RemoveItem {
            sku: Sku::parse(format!("SKU-{}", rng.below(5))).expect("valid"),
        },
        5 => OrderCommand::Confirm,
        6 => OrderCommand::Ship {
            carrier: Carrier::parse("DHL").expect("valid"),
            tracking_number: TrackingNumber::parse(format!("JD{}", rng.below(1_000_000)))
                .expect("valid"),
        },
        7 => OrderCommand::Deliver,
        8 => OrderCommand::Cancel {
            reason: CancelReason::parse("changed my mind").expect("valid"),
        },
        _ => OrderCommand::RecordStockReserved,
    }
}

/// Appends raw records (key, value) in one transaction; returns where each landed.
pub fn append_raw(
    kafka: &KafkaConfig,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> anyhow::Result<Vec<Appended>> {
    let producer = TransactionalProducer::new(kafka, &format!("test-raw-{}", Uuid::now_v7()))?;
    producer.begin()?;
    let pending = records
        .iter()
        .map(|(key, payload)| {
            producer.send_tracked(OutgoingRecord {
                topic,
                key: key.as_bytes(),
                payload,
                headers: &[],
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    producer.commit()?;
    pending
        .into_iter()
        .map(|send| {
            Ok(send
                .completed()
                .ok_or_else(|| anyhow::anyhow!("no delivery report after commit"))??)
        })
        .collect()
}

/// Appends `orders` new orders (one `OrderPlaced` each), `per_transaction`
/// to a transaction; returns each partition's end offset after them.
#[allow(dead_code, reason = "the benchmarks' backlog")]
pub fn backlog(
    kafka: &KafkaConfig,
    topic: &str,
    orders: usize,
    per_transaction: usize,
) -> anyhow::Result<Vec<i64>> {
    let producer = TransactionalProducer::new(kafka, &format!("backlog-{}", Uuid::now_v7()))?;
    let mut ends = Vec::new();
    let mut left = orders;
    while left > 0 {
        let chunk = left.min(per_transaction);
        left -= chunk;
        producer.begin()?;
        let mut pending = Vec::with_capacity(chunk);
        for _ in 0..chunk {
            let id = Uuid::now_v7();
            let payload = batch_of(id, 0, placed(id)).encode("order");
            pending.push(producer.send_tracked(OutgoingRecord {
                topic,
                key: id.to_string().as_bytes(),
                payload: &payload,
                headers: &[],
            })?);
        }
        producer.commit()?;
        for send in pending {
            if let Some(Ok(appended)) = send.completed() {
                let partition = appended.partition as usize;
                if ends.len() <= partition {
                    ends.resize(partition + 1, 0);
                }
                ends[partition] = ends[partition].max(appended.offset + 1);
            }
        }
    }
    Ok(ends)
}

/// A one-event batch for `order_id`, as the next command on `base_version`.
pub fn batch_of(order_id: Uuid, base_version: u64, event: OrderEvent) -> CommandBatch<OrderEvent> {
    let meta = CommandMeta {
        aggregate_id: order_id,
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        occurred_at: Utc::now(),
    };
    CommandBatch::new(meta, base_version, vec![event], Uuid::now_v7).expect("one event")
}

/// An `OrderPlaced` with one line.
pub fn placed(order_id: Uuid) -> OrderEvent {
    OrderEvent::OrderPlaced {
        order_id,
        customer_id: CustomerId::parse("customer-1").expect("valid"),
        email: Email::parse("buyer@example.com").expect("valid"),
        items: vec![LineItem {
            sku: Sku::parse("BOOK-1").expect("valid"),
            quantity: Quantity::parse(2).expect("valid"),
            unit_price: UnitPrice::parse(1_500).expect("valid"),
        }],
    }
}
