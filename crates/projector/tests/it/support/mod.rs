//! What the tests share: a projector child process, a writer of command
//! batches, and small helpers. The independent fold of the log is
//! `e2e::fold`.

pub mod bench;
pub mod database;
pub mod process;
pub mod stock_writer;
pub mod writer;

use std::time::Duration;

use event_store::{KafkaConfig, StreamTopics, ensure_topics};
use uuid::Uuid;

/// Partitions of every test's topics: few, so tests start fast, but more
/// than one, so partitions are exercised.
pub const PARTITIONS: i32 = 3;

pub fn kafka() -> KafkaConfig {
    let servers =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    KafkaConfig::new(servers, format!("projector-test-{}", Uuid::now_v7()))
}

/// Topics of a prefix no other test uses, created.
pub async fn fresh_topics() -> anyhow::Result<StreamTopics> {
    let prefix = format!("test-{}", Uuid::now_v7().simple());
    let topics = StreamTopics::new(&prefix);
    ensure_topics(&kafka(), &topics.specs(PARTITIONS)).await?;
    Ok(topics)
}

/// The inventory's topics beside the orders' `topics` (the services' naming
/// rule under a prefix of a test's own).
pub fn inventory_topics(topics: &StreamTopics) -> StreamTopics {
    let prefix = topics
        .events
        .strip_suffix(".events")
        .unwrap_or(&topics.events);
    StreamTopics::new(&format!("{prefix}-inventory"))
}

/// A projector on fresh topics, with a consumer group and state folder of its own.
pub async fn start_projector(
    extra_flags: &[&str],
) -> anyhow::Result<(StreamTopics, process::Projector)> {
    let topics = fresh_topics().await?;
    let group = format!("test-group-{}", Uuid::now_v7().simple());
    let state_dir = std::env::temp_dir().join(&group);
    let projector = process::Projector::start_with(&topics, &group, &state_dir, extra_flags).await;
    Ok((topics, projector))
}

/// Appends `commands` batches on `orders` orders (see [`writer::Writer`]).
pub async fn write(
    topics: &StreamTopics,
    orders: usize,
    commands: usize,
    per_transaction: usize,
    seed: u64,
) -> anyhow::Result<writer::Writer> {
    let (kafka, topics) = (kafka(), topics.clone());
    tokio::task::spawn_blocking(move || {
        let mut writer = writer::Writer::new(&kafka, &topics, orders, seed)?;
        writer.append(commands, per_transaction)?;
        Ok(writer)
    })
    .await?
}

pub use e2e::wait::eventually;

/// A small deterministic generator (xorshift), so failures reproduce from the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Waits until the members of a group together have committed every
/// partition to its end.
pub async fn wait_group_caught_up(members: &[process::Projector], ends: &[i64]) {
    eventually(
        "the group to catch up",
        Duration::from_secs(600),
        async || {
            let mut committed = vec![0i64; ends.len()];
            for member in members {
                let (_, ownership) = member.json("/partitions").await;
                for p in ownership["partitions"].as_array()? {
                    let index = usize::try_from(p["partition"].as_i64()?).ok()?;
                    let slot = committed.get_mut(index)?;
                    *slot = (*slot).max(p["committed_offset"].as_i64()?);
                }
            }
            committed
                .iter()
                .zip(ends)
                .all(|(c, e)| c >= e)
                .then_some(())
        },
    )
    .await;
}

/// Waits until every partition has a standby copy somewhere that has
/// applied its changelog up to the end it has now. A copy's own `lag` is
/// only as fresh as the last statistics it saw (a second apart), so it can
/// read 0 for a moment after an owner commits more: the end is asked of
/// the brokers instead.
pub async fn wait_standbys_current(members: &[process::Projector], changelog: &str) {
    let probe = event_store::probe::KafkaProbe::new(&kafka()).expect("a Kafka client");
    let mut ends = Vec::new();
    for partition in 0..PARTITIONS {
        let end = eventually("the changelog's end", Duration::from_secs(30), async || {
            probe
                .end_offset(changelog, partition, Duration::from_secs(5))
                .await
                .ok()
        })
        .await;
        ends.push(end);
    }
    eventually(
        "current standby copies",
        Duration::from_secs(120),
        async || {
            let mut current = std::collections::BTreeSet::new();
            for member in members {
                let (_, ownership) = member.json("/partitions").await;
                for copy in ownership["standbys"].as_array()? {
                    let partition = copy["partition"].as_i64()?;
                    let end = *ends.get(usize::try_from(partition).ok()?)?;
                    if end > 0 && copy["changelog_offset"].as_i64()? >= end {
                        current.insert(partition);
                    }
                }
            }
            (current.len() == PARTITIONS as usize).then_some(())
        },
    )
    .await;
}
