//! Appends inventory command batches as order-service would, each decided
//! on the writer's own fold (so accepted by construction), with some
//! repeated on purpose (duplicates).

use chrono::Utc;
use domain::aggregate::{Aggregate, CommandBatch, CommandMeta, Snapshot, Verdict};
use domain::inventory::{
    InventoryAggregate, InventoryCommand, InventoryEvent, Quantity, Sku, Stock, stock_id,
};
use event_store::{KafkaConfig, OutgoingRecord, StreamTopics, TransactionalProducer};
use uuid::Uuid;

use super::Rng;

pub type StockSnapshot = Snapshot<Option<Stock>>;

pub struct StockWriter {
    producer: TransactionalProducer,
    topic: String,
    rng: Rng,
    /// Each SKU's id, its state by construction, and its last accepted batch.
    stock: Vec<(Uuid, StockSnapshot, Option<CommandBatch<InventoryEvent>>)>,
    /// The next offset of each partition after everything written.
    pub ends: Vec<i64>,
    /// Batches appended that repeat an accepted one.
    pub repeats: usize,
}

impl StockWriter {
    pub fn new(
        kafka: &KafkaConfig,
        topics: &StreamTopics,
        skus: usize,
        partitions: i32,
        seed: u64,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            producer: TransactionalProducer::new(kafka, &format!("test-stock-{}", Uuid::now_v7()))?,
            topic: topics.events.clone(),
            rng: Rng::new(seed),
            stock: (0..skus)
                .map(|n| {
                    let sku = Sku::parse(format!("SKU-{n}")).expect("valid");
                    (stock_id(&sku), Snapshot::default(), None)
                })
                .collect(),
            ends: vec![0; usize::try_from(partitions).unwrap_or(0)],
            repeats: 0,
        })
    }

    /// Every SKU's id and the snapshot it must end in.
    pub fn expected(&self) -> impl Iterator<Item = (Uuid, &StockSnapshot)> {
        self.stock.iter().map(|(id, snapshot, _)| (*id, snapshot))
    }

    /// Appends `commands` batches, `per_transaction` to a transaction.
    pub fn append(&mut self, commands: usize, per_transaction: usize) -> anyhow::Result<()> {
        for _ in 0..commands.div_ceil(per_transaction) {
            let batches: Vec<_> = (0..per_transaction).map(|_| self.next_batch()).collect();
            self.producer.begin()?;
            let mut pending = Vec::new();
            for batch in &batches {
                let payload = batch.encode(InventoryAggregate::TYPE);
                pending.push(self.producer.send_tracked(OutgoingRecord {
                    topic: &self.topic,
                    key: batch.aggregate_id().to_string().as_bytes(),
                    payload: &payload,
                    headers: &[],
                })?);
            }
            self.producer.commit()?;
            for send in pending {
                let appended = send
                    .completed()
                    .ok_or_else(|| anyhow::anyhow!("no delivery report after commit"))??;
                let end = &mut self.ends[usize::try_from(appended.partition)?];
                *end = (*end).max(appended.offset + 1);
            }
        }
        Ok(())
    }

    fn next_batch(&mut self) -> CommandBatch<InventoryEvent> {
        let index = self.rng.below(self.stock.len() as u64) as usize;
        let repeat = self.rng.below(100) < 10;
        let (id, current, last) = &self.stock[index];
        let meta = |command_id| CommandMeta {
            aggregate_id: *id,
            command_id,
            correlation_id: Uuid::now_v7(),
            occurred_at: Utc::now(),
        };
        if repeat && let Some(last) = last {
            // The last accepted command again, re-decided on the current
            // version: the log recognises it as a duplicate.
            let events = last.envelopes().iter().map(|e| e.event.clone()).collect();
            self.repeats += 1;
            return CommandBatch::new(
                meta(last.command_id()),
                current.version,
                events,
                Uuid::now_v7,
            )
            .expect("events");
        }
        let events = (0..20)
            .find_map(|_| {
                let command = random_command(&mut self.rng, current.state.as_ref(), index);
                InventoryAggregate::decide(&command, &current.state).ok()
            })
            .unwrap_or_else(|| vec![InventoryEvent::StockReceived { units: 1 }]);
        let batch = CommandBatch::new(meta(Uuid::now_v7()), current.version, events, Uuid::now_v7)
            .expect("events");
        let (next, verdict) = current.clone().apply::<InventoryAggregate>(&batch);
        assert!(
            matches!(verdict, Verdict::Accepted { .. }),
            "decided on the current state: accepted by construction"
        );
        self.stock[index].1 = next;
        self.stock[index].2 = Some(batch.clone());
        batch
    }
}

fn random_command(rng: &mut Rng, stock: Option<&Stock>, index: usize) -> InventoryCommand {
    let units = |rng: &mut Rng| Quantity::parse(1 + rng.below(3)).expect("1 to 3");
    let Some(stock) = stock else {
        return InventoryCommand::Create {
            sku: Sku::parse(format!("SKU-{index}")).expect("valid"),
            low_stock_threshold: 2,
        };
    };
    let held: Vec<Uuid> = stock.reservations.keys().copied().collect();
    let some_order = |rng: &mut Rng| held[rng.below(held.len() as u64) as usize];
    match rng.below(10) {
        0..3 => InventoryCommand::Restock { units: units(rng) },
        3..6 => InventoryCommand::Reserve {
            order_id: Uuid::now_v7(),
            units: units(rng),
        },
        6..8 if !held.is_empty() => InventoryCommand::Release {
            order_id: some_order(rng),
        },
        _ if !held.is_empty() => InventoryCommand::Commit {
            order_id: some_order(rng),
        },
        _ => InventoryCommand::Restock { units: units(rng) },
    }
}
