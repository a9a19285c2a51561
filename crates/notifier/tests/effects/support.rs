//! Fresh topics and a database per test, change records as the projector
//! writes them, and the notifier as a child process.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use domain::aggregate::{Aggregate, CommandBatch, CommandMeta, Snapshot};
use domain::order::{
    CancelReason, Carrier, CustomerId, Email, LineItem, OrderAggregate, OrderEvent, Quantity, Sku,
    TrackingNumber, UnitPrice,
};
use e2e::sinks::smtp::SmtpSink;
use event_store::{
    AppendRecord, Appender, AppenderSettings, KafkaConfig, StreamTopics, ensure_topics,
};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const PARTITIONS: i32 = 3;

/// A change record to append, and what it should cause.
pub struct ChangeRecord {
    pub entity_id: Uuid,
    pub event_id: Uuid,
    pub occurred_at: chrono::DateTime<Utc>,
    pub payload: Vec<u8>,
}

/// Two accepted events per order, as the projector writes them: placed, then
/// shipped (even orders) or cancelled (odd ones). Each causes an e-mail and
/// a webhook.
pub fn changes_of(orders: usize) -> Vec<ChangeRecord> {
    let mut records = Vec::new();
    for n in 0..orders {
        let order_id = Uuid::now_v7();
        let placed = OrderEvent::OrderPlaced {
            order_id,
            customer_id: CustomerId::parse(format!("customer-{n}")).expect("valid"),
            email: Email::parse(format!("c{n}@example.com")).expect("valid"),
            items: vec![LineItem {
                sku: Sku::parse("BOOK-1").expect("valid"),
                quantity: Quantity::parse(1).expect("valid"),
                unit_price: UnitPrice::parse(1_500).expect("valid"),
            }],
        };
        let next = if n % 2 == 0 {
            OrderEvent::OrderShipped {
                carrier: Carrier::parse("DHL").expect("valid"),
                tracking_number: TrackingNumber::parse(format!("T{n}")).expect("valid"),
            }
        } else {
            OrderEvent::OrderCancelled {
                reason: CancelReason::parse("changed my mind").expect("valid"),
            }
        };
        records.extend(change_records::<OrderAggregate>(
            order_id,
            vec![placed, next],
        ));
    }
    records
}

/// The change records the projector writes for `events` of one entity,
/// each accepted in turn.
pub fn change_records<A: Aggregate>(id: Uuid, events: Vec<A::Event>) -> Vec<ChangeRecord> {
    let mut snapshot = Snapshot::<A::State>::default();
    let mut records = Vec::new();
    for event in events {
        let meta = CommandMeta {
            aggregate_id: id,
            command_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
            occurred_at: Utc::now(),
        };
        let batch = CommandBatch::new(meta, snapshot.version, vec![event], Uuid::now_v7)
            .expect("one event");
        let envelope = batch.envelopes()[0].clone();
        snapshot = snapshot.apply::<A>(&batch).0;
        let event: serde_json::Value =
            serde_json::from_slice(&envelope.encode(A::TYPE)).expect("JSON");
        let payload =
            serde_json::to_vec(&serde_json::json!({ "event": event, "state": snapshot.state }))
                .expect("JSON");
        records.push(ChangeRecord {
            entity_id: id,
            event_id: envelope.event_id,
            occurred_at: envelope.occurred_at,
            payload,
        });
    }
    records
}

pub fn expected_effects(changes: &[ChangeRecord]) -> BTreeMap<String, ()> {
    changes
        .iter()
        .flat_map(|c| {
            [
                format!("email:{}", c.event_id),
                format!("webhook:{}", c.event_id),
            ]
        })
        .map(|id| (id, ()))
        .collect()
}

/// Fresh topics and a database of this test's own.
pub struct TestEnv {
    pub kafka: KafkaConfig,
    pub prefix: String,
    pub database_url: String,
    pub pool: PgPool,
}

impl TestEnv {
    pub async fn new() -> anyhow::Result<Self> {
        let run = Uuid::now_v7().simple().to_string();
        let servers =
            std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
        let kafka = KafkaConfig::new(servers, format!("notifier-test-{run}"));
        let prefix = format!("test-{run}");
        for entity in [prefix.clone(), format!("{prefix}-inventory")] {
            ensure_topics(&kafka, &StreamTopics::new(&entity).specs(PARTITIONS)).await?;
        }
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://orders:orders@127.0.0.1:5432/orders".into());
        // The name is ours (a UUID), not input: safe to splice.
        PgConnection::connect(&url)
            .await?
            .execute(AssertSqlSafe(format!(r#"CREATE DATABASE "test_{run}""#)))
            .await?;
        let (base, _) = url.rsplit_once('/').unwrap_or((url.as_str(), ""));
        let database_url = format!("{base}/test_{run}");
        let pool = PgPool::connect(&database_url).await?;
        Ok(Self {
            kafka,
            prefix,
            database_url,
            pool,
        })
    }

    pub fn appender(&self) -> anyhow::Result<Appender> {
        Ok(Appender::start(
            &self.kafka,
            &format!("{}-writer", self.prefix),
            AppenderSettings::default(),
        )?)
    }

    /// Appends the orders' change records, each order's in order.
    pub async fn append(
        &self,
        appender: &Appender,
        changes: &[ChangeRecord],
    ) -> anyhow::Result<()> {
        let topic = StreamTopics::new(&self.prefix).changes;
        self.append_to(appender, &topic, changes).await
    }

    /// Appends change records to `topic`, each entity's in order.
    pub async fn append_to(
        &self,
        appender: &Appender,
        topic: &str,
        changes: &[ChangeRecord],
    ) -> anyhow::Result<()> {
        for change in changes {
            appender
                .append(AppendRecord {
                    topic: topic.to_owned(),
                    key: change.entity_id.to_string().into_bytes(),
                    payload: change.payload.clone(),
                    headers: Vec::new(),
                })
                .await?;
        }
        Ok(())
    }

    /// Waits until the table holds at least `count` effects, in any state,
    /// so a kill then lands while deliveries are under way.
    pub async fn wait_effects(&self, count: usize) -> anyhow::Result<()> {
        let recorded = e2e::wait::until(Duration::from_secs(60), async || {
            let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM notifier.effects")
                .fetch_one(&self.pool)
                .await
                .unwrap_or(0);
            if seen as usize >= count {
                Ok(())
            } else {
                Err(seen)
            }
        })
        .await;
        recorded.map_err(|seen| anyhow::anyhow!("{seen} of {count} effects recorded"))
    }

    /// Waits until every expected effect is sent or failed; returns the table.
    pub async fn wait_settled(
        &self,
        expected: &BTreeMap<String, ()>,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let settled = e2e::wait::until(Duration::from_secs(180), async || {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT effect_id, state FROM notifier.effects")
                    .fetch_all(&self.pool)
                    .await
                    .unwrap_or_default();
            let table: BTreeMap<String, String> = rows.into_iter().collect();
            let settled = expected
                .keys()
                .all(|id| table.get(id).is_some_and(|s| s == "sent" || s == "failed"));
            if settled { Ok(table) } else { Err(table.len()) }
        })
        .await;
        settled.map_err(|seen| {
            anyhow::anyhow!(
                "effects never settled: {seen} of {} in the table",
                expected.len()
            )
        })
    }
}

/// The notifier as a child process.
pub struct Notifier {
    child: Option<Child>,
    args: Vec<String>,
    /// Its health, metrics and operators' API.
    pub base_url: String,
}

impl Notifier {
    /// Started with a compressed retry schedule; a flag in `extra` replaces
    /// the default of the same name.
    pub fn start(env: &TestEnv, smtp: &SmtpSink, webhook_url: &str, extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let args = vec![
            format!("--topic-prefix={}", env.prefix),
            format!("--partitions={PARTITIONS}"),
            format!("--group-id={}-notifier", env.prefix),
            format!("--instance-id={}-notifier-0", env.prefix),
            format!("--database-url={}", env.database_url),
            format!("--smtp-port={}", smtp.addr.port()),
            format!("--webhook-url={webhook_url}"),
            format!("--webhook-secret={SECRET}"),
            "--max-attempts=2".into(),
            "--backoff-ms=20".into(),
            "--max-backoff-ms=1500".into(),
            "--attempt-timeout-ms=1000".into(),
            format!("--http-addr=127.0.0.1:{port}"),
        ];
        let name = |arg: &str| arg.split('=').next().unwrap_or_default().to_owned();
        let replaced: Vec<String> = extra.iter().map(|a| name(a)).collect();
        let args = args
            .into_iter()
            .filter(|a| !replaced.contains(&name(a)))
            .chain(extra.iter().map(|a| a.to_string()))
            .collect();
        let mut notifier = Self {
            child: None,
            args,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        notifier.spawn();
        notifier
    }

    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_notifier"))
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("the notifier starts");
        self.child = Some(child);
    }

    pub fn kill9_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
        self.spawn();
    }

    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill -TERM");
            assert!(status.success());
            let exit = child.wait().expect("reaped");
            assert!(
                exit.success(),
                "the notifier exits cleanly on SIGTERM: {exit}"
            );
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
