//! Guarantee 5 against real Kafka, PostgreSQL, an SMTP server and a webhook
//! endpoint that fails 30 % of requests, throttles and hangs some, while the
//! notifier is `kill -9`'d and restarted mid-run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::aggregate::{Aggregate, CommandBatch, CommandMeta, Snapshot};
use domain::inventory::{self, InventoryAggregate, InventoryEvent};
use domain::order::{
    CancelReason, Carrier, CustomerId, Email, LineItem, OrderAggregate, OrderEvent, Quantity, Sku,
    TrackingNumber, UnitPrice,
};
use e2e::sinks::smtp::SmtpSink;
use e2e::sinks::webhook::{Behaviour, WebhookSink};
use event_store::{
    AppendRecord, Appender, AppenderSettings, KafkaConfig, StreamTopics, ensure_topics,
    read_committed_to_end,
};
use notifier::signature::Secret;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PARTITIONS: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_effect_is_settled_once_and_delivered_at_least_once_across_kill_9()
-> anyhow::Result<()> {
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let hooks = WebhookSink::start(
        "127.0.0.1:0".parse()?,
        Secret::parse(SECRET)?,
        Behaviour {
            fail_percent: 30,
            throttle_percent: 5,
            hang_percent: 3,
            hang: Duration::from_millis(1_500),
            gone: false,
        },
    )
    .await?;
    let env = TestEnv::new().await?;
    let mut notifier = Notifier::start(&env, &smtp, &hooks.url(), &[]);

    // 120 orders: placed, then shipped (or cancelled), in order per order.
    let changes = changes_of(120);
    let appender = env.appender()?;
    let (first, rest) = changes.split_at(changes.len() / 2);
    env.append(&appender, first).await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    notifier.kill9_and_restart();
    env.append(&appender, rest).await?;
    tokio::time::sleep(Duration::from_millis(900)).await;
    notifier.kill9_and_restart();

    let expected = expected_effects(&changes);
    let table = env.wait_settled(&expected).await?;
    notifier.terminate();

    // The table: each effect exactly once, and nothing else.
    assert_eq!(
        table.keys().cloned().collect::<BTreeSet<_>>(),
        expected.keys().cloned().collect()
    );
    let dead: BTreeSet<String> =
        read_committed_to_end(&env.kafka, &format!("{}.notifier.dlq", env.prefix))
            .await?
            .iter()
            .filter_map(|r| serde_json::from_slice::<serde_json::Value>(r.payload.as_deref()?).ok())
            .filter_map(|v| v["effect_id"].as_str().map(str::to_owned))
            .collect();
    let delivered_hooks: BTreeSet<String> = hooks
        .received()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.id.clone())
        .collect();
    let mails: BTreeSet<String> = smtp
        .received()
        .iter()
        .filter_map(|m| m.header("Message-ID").map(str::to_owned))
        .collect();
    for (id, state) in &table {
        match state.as_str() {
            "sent" if id.starts_with("webhook:") => {
                assert!(
                    delivered_hooks.contains(id),
                    "{id} is recorded sent, so it was delivered"
                )
            }
            // `email:<event id>` is mailed as `<email.<event id>@notifier.orders>`.
            "sent" => assert!(
                mails.contains(&format!("<{}@notifier.orders>", id.replacen(':', ".", 1))),
                "{id} was mailed"
            ),
            "failed" => assert!(
                dead.contains(id),
                "{id} failed, so it is in the dead-letter topic"
            ),
            other => panic!("{id} ended {other}"),
        }
    }
    assert!(
        table.values().any(|s| s == "failed"),
        "with 30 % failures and 2 attempts some effects run out of attempts"
    );
    assert!(table.values().filter(|s| *s == "sent").count() > expected.len() / 2);

    // Every request was signed correctly; a duplicate carries the same id.
    let received = hooks.received();
    assert!(
        received.iter().all(|r| r.verified),
        "every webhook verifies"
    );
    for request in &received {
        let body: serde_json::Value = serde_json::from_slice(&request.body)?;
        let event_id = body["data"]["event"]["event_id"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            request.id,
            format!("webhook:{event_id}"),
            "webhook-id is stable per event"
        );
    }
    // Each order's webhooks were first delivered in version order.
    let mut first_delivery: HashMap<String, usize> = HashMap::new();
    for (index, request) in received.iter().enumerate() {
        if request.status == 200 {
            first_delivery.entry(request.id.clone()).or_insert(index);
        }
    }
    for per_order in changes.chunks(2) {
        let ids: Vec<Option<usize>> = per_order
            .iter()
            .map(|c| {
                first_delivery
                    .get(&format!("webhook:{}", c.event_id))
                    .copied()
            })
            .collect();
        if let [Some(placed), Some(next)] = ids[..] {
            assert!(placed < next, "an order's effects keep their order");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_disables_the_endpoint_and_later_webhooks_are_not_sent() -> anyhow::Result<()> {
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let gone = WebhookSink::start(
        "127.0.0.1:0".parse()?,
        Secret::parse(SECRET)?,
        Behaviour {
            gone: true,
            ..Behaviour::default()
        },
    )
    .await?;
    let env = TestEnv::new().await?;
    // One order at a time, so no second webhook is already in flight when
    // the first 410 arrives.
    let mut notifier = Notifier::start(&env, &smtp, &gone.url(), &["--concurrency=1"]);
    let changes = changes_of(5);
    env.append(&env.appender()?, &changes).await?;
    let table = env.wait_settled(&expected_effects(&changes)).await?;
    notifier.terminate();

    assert_eq!(gone.received().len(), 1, "nothing is sent after the 410");
    let webhooks: Vec<&String> = table
        .iter()
        .filter(|(id, _)| id.starts_with("webhook:"))
        .map(|(_, s)| s)
        .collect();
    assert!(webhooks.iter().all(|s| *s == "failed"));
    let disabled: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifier.disabled_endpoints WHERE url = $1")
            .bind(gone.url())
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(disabled, 1);
    assert_eq!(
        table
            .iter()
            .filter(|(id, s)| id.starts_with("email:") && *s == "sent")
            .count(),
        changes.len(),
        "e-mails are not affected"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_stock_is_announced_by_the_reservation_that_crosses_the_threshold() -> anyhow::Result<()>
{
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let hooks = WebhookSink::start(
        "127.0.0.1:0".parse()?,
        Secret::parse(SECRET)?,
        Behaviour::default(),
    )
    .await?;
    let env = TestEnv::new().await?;
    let mut notifier = Notifier::start(&env, &smtp, &hooks.url(), &[]);

    // Threshold 5: 10 in, 4 reserved (6 left), 2 more (4: crosses), 1 more
    // (3: still low), released (4), 10 in (14), 10 reserved (4: crosses again).
    let sku = inventory::Sku::parse("PEN-1")?;
    let id = inventory::stock_id(&sku);
    let reserve = |units: u64| InventoryEvent::StockReserved {
        order_id: Uuid::now_v7(),
        units,
    };
    let third = reserve(1);
    let InventoryEvent::StockReserved {
        order_id: released, ..
    } = third
    else {
        unreachable!("a reservation")
    };
    let events = vec![
        InventoryEvent::StockCreated {
            sku,
            low_stock_threshold: 5,
        },
        InventoryEvent::StockReceived { units: 10 },
        reserve(4),
        reserve(2),
        third,
        InventoryEvent::ReservationReleased {
            order_id: released,
            units: 1,
        },
        InventoryEvent::StockReceived { units: 10 },
        reserve(10),
    ];
    let changes = change_records::<InventoryAggregate>(id, events);
    let crossing = [changes[3].event_id, changes[7].event_id];
    env.append_to(
        &env.appender()?,
        &StreamTopics::new(&format!("{}-inventory", env.prefix)).changes,
        &changes,
    )
    .await?;
    let expected: BTreeMap<String, ()> = crossing
        .iter()
        .map(|event| (format!("webhook:{event}"), ()))
        .collect();
    let table = env.wait_settled(&expected).await?;
    notifier.terminate();

    assert_eq!(table.len(), 2, "only the crossings: {table:?}");
    let entities: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT entity_type, entity_id FROM notifier.effects")
            .fetch_all(&env.pool)
            .await?;
    assert!(
        entities.iter().all(|e| *e == ("inventory".to_owned(), id)),
        "{entities:?}"
    );
    let received: Vec<serde_json::Value> = hooks
        .received()
        .iter()
        .filter(|r| r.status == 200 && r.verified)
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect();
    assert_eq!(received.len(), 2, "{received:?}");
    for (hook, available) in received.iter().zip([4, 4]) {
        assert_eq!(hook["type"], "inventory.low_stock");
        assert_eq!(hook["data"]["state"]["available"], available);
        assert_eq!(hook["data"]["state"]["sku"], "PEN-1");
    }
    assert!(smtp.received().is_empty(), "stock sends no e-mail");
    Ok(())
}

/// A change record to append, and what it should cause.
struct ChangeRecord {
    entity_id: Uuid,
    event_id: Uuid,
    payload: Vec<u8>,
}

/// Two accepted events per order, as the projector writes them: placed, then
/// shipped (even orders) or cancelled (odd ones). Each causes an e-mail and
/// a webhook.
fn changes_of(orders: usize) -> Vec<ChangeRecord> {
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
fn change_records<A: Aggregate>(id: Uuid, events: Vec<A::Event>) -> Vec<ChangeRecord> {
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
            payload,
        });
    }
    records
}

fn expected_effects(changes: &[ChangeRecord]) -> BTreeMap<String, ()> {
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
struct TestEnv {
    kafka: KafkaConfig,
    prefix: String,
    database_url: String,
    pool: PgPool,
}

impl TestEnv {
    async fn new() -> anyhow::Result<Self> {
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

    fn appender(&self) -> anyhow::Result<Appender> {
        Ok(Appender::start(
            &self.kafka,
            &format!("{}-writer", self.prefix),
            AppenderSettings::default(),
        )?)
    }

    /// Appends the orders' change records, each order's in order.
    async fn append(&self, appender: &Appender, changes: &[ChangeRecord]) -> anyhow::Result<()> {
        let topic = StreamTopics::new(&self.prefix).changes;
        self.append_to(appender, &topic, changes).await
    }

    /// Appends change records to `topic`, each entity's in order.
    async fn append_to(
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

    /// Waits until every expected effect is sent or failed; returns the table.
    async fn wait_settled(
        &self,
        expected: &BTreeMap<String, ()>,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT effect_id, state FROM notifier.effects")
                    .fetch_all(&self.pool)
                    .await
                    .unwrap_or_default();
            let table: BTreeMap<String, String> = rows.into_iter().collect();
            let settled = expected
                .keys()
                .all(|id| table.get(id).is_some_and(|s| s == "sent" || s == "failed"));
            if settled {
                return Ok(table);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "effects never settled: {} of {} in the table",
                table.len(),
                expected.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The notifier as a child process.
struct Notifier {
    child: Option<Child>,
    args: Vec<String>,
}

impl Notifier {
    fn start(env: &TestEnv, smtp: &SmtpSink, webhook_url: &str, extra: &[&str]) -> Self {
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
        let args = args
            .into_iter()
            .chain(extra.iter().map(|a| a.to_string()))
            .collect();
        let mut notifier = Self { child: None, args };
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

    fn kill9_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
        self.spawn();
    }

    fn terminate(&mut self) {
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
