//! Scarce stock under crashes: ten SKUs of 30 units, 400 orders of one to
//! three lines competing for them, while the fulfilment process and the
//! projector are each killed with `kill -9` five times. At the end every
//! confirmed order holds exactly its lines or was cancelled out of stock
//! holding nothing, every SKU's counts add up at every version of its log,
//! and every state equals an independent fold of the log.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use domain::inventory::{InventoryAggregate, Stock, stock_id};
use domain::order::Sku;
use e2e::cluster::{Service, build_binaries};
use e2e::fold::fold_log_of;
use e2e::wait::{Deadline, eventually};
use event_store::{KafkaConfig, StreamTopics, read_committed_to_end};
use serde_json::{Value, json};
use uuid::Uuid;

const SKUS: usize = 10;
const UNITS: u64 = 30;
const ORDERS: u64 = 400;

/// The fulfilment process (its health and metrics are not what this test
/// asks: its work is its readiness).
struct Fulfilment {
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Fulfilment {
    fn start(program: PathBuf, args: Vec<String>, log: PathBuf) -> std::io::Result<Self> {
        let mut process = Self {
            program,
            args,
            log,
            child: None,
        };
        process.spawn()?;
        Ok(process)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)?;
        self.child = Some(
            Command::new(&self.program)
                .args(&self.args)
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()?,
        );
        Ok(())
    }

    fn kill9_and_restart(&mut self) -> std::io::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.spawn()
    }
}

impl Drop for Fulfilment {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a command until it has a verdict; the key makes retries safe.
/// The services are killed meanwhile, so no answer or a 5xx is retried.
async fn command(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let deadline = Deadline::new(Duration::from_millis(100), Duration::from_secs(120));
    loop {
        let mut request = http.post(url).header("idempotency-key", key);
        if let Some(body) = &body {
            request = request.json(body);
        }
        if let Ok(answer) = request.send().await
            && !answer.status().is_server_error()
        {
            let status = answer.status().as_u16();
            return (status, answer.json().await.unwrap_or(Value::Null));
        }
        assert!(
            deadline.pause().await,
            "no verdict on {url} within 2 minutes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scarce_stock_under_kill_9_is_never_lost_doubled_or_negative() -> anyhow::Result<()> {
    let bin = build_binaries(&["projector", "order-service", "fulfilment"])?;
    let run = Uuid::now_v7().simple().to_string();
    let prefix = format!("test-{run}");
    let dir = std::env::temp_dir().join(format!("fulfilment-crash-{run}"));
    std::fs::create_dir_all(&dir)?;
    let database_url = e2e::postgres::fresh_database(&format!("test_{run}")).await?;
    let common = |extra: &[String]| -> Vec<String> {
        [
            format!("--topic-prefix={prefix}"),
            "--partitions=3".to_owned(),
            format!("--database-url={database_url}"),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .collect()
    };
    let mut projector = Service::start(
        "projector",
        bin.join("projector"),
        common(&[
            format!("--instance-id=projector-{run}"),
            format!("--state-dir={}", dir.join("state").display()),
            "--session-timeout-ms=6000".to_owned(),
        ]),
        &dir,
    )?;
    let http = reqwest::Client::new();
    projector
        .wait_ready(&http, Duration::from_secs(300))
        .await
        .map_err(anyhow::Error::msg)?;
    let service = Service::start(
        "order-service",
        bin.join("order-service"),
        common(&[
            format!("--instance-id=order-service-{run}"),
            format!("--projector-url={}", projector.url),
            "--conflict-retries=50".to_owned(),
        ]),
        &dir,
    )?;
    service
        .wait_ready(&http, Duration::from_secs(300))
        .await
        .map_err(anyhow::Error::msg)?;
    let api = service.url.clone();
    let mut fulfilment = Fulfilment::start(
        bin.join("fulfilment"),
        vec![
            format!("--topic-prefix={prefix}"),
            "--partitions=3".to_owned(),
            format!("--instance-id=fulfilment-{run}"),
            format!("--order-service-url={api}"),
            "--http-addr=127.0.0.1:0".to_owned(),
        ],
        dir.join("fulfilment.log"),
    )?;

    let skus: Vec<String> = (0..SKUS).map(|n| format!("SKU-{n}")).collect();
    for sku in &skus {
        let answer = http
            .put(format!("{api}/inventory/{sku}"))
            .header("idempotency-key", format!("put-{sku}"))
            .json(&json!({}))
            .send()
            .await?;
        anyhow::ensure!(
            answer.status().is_success() || answer.status() == 409,
            "creating {sku}"
        );
        let (status, body) = command(
            &http,
            &format!("{api}/inventory/{sku}/restock"),
            &format!("restock-{sku}"),
            Some(json!({ "units": UNITS })),
        )
        .await;
        anyhow::ensure!(status == 200, "restocking {sku}: {body}");
    }

    // 400 orders placed and confirmed by 16 clients, while both processes
    // are killed five times each.
    let lines_of = |n: u64| -> Vec<(String, u64)> {
        (0..1 + n % 3)
            .map(|i| {
                (
                    format!("SKU-{}", (n * 7 + i * 3) % SKUS as u64),
                    1 + (n + i) % 3,
                )
            })
            .collect()
    };
    let placed = Arc::new(tokio::sync::Mutex::new(BTreeMap::new()));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..16u64 {
        let (http, api, placed) = (http.clone(), api.clone(), placed.clone());
        clients.spawn(async move {
            for n in (client..ORDERS).step_by(16) {
                let lines = lines_of(n);
                let items: Vec<Value> = lines
                    .iter()
                    .map(|(sku, units)| json!({ "sku": sku, "quantity": units, "unit_price_cents": 100 }))
                    .collect();
                let body = json!({ "customer_id": format!("c-{n}"), "email": "c@example.com", "items": items });
                let (_, order) = command(&http, &format!("{api}/orders"), &format!("place-{n}"), Some(body)).await;
                let Some(id) = order["id"].as_str().map(str::to_owned) else {
                    continue;
                };
                command(&http, &format!("{api}/orders/{id}/confirm"), &format!("confirm-{id}"), None).await;
                placed.lock().await.insert(id, lines);
            }
        });
    }
    // Kills at milestones of the load, so each lands while orders are being
    // placed, confirmed and reserved.
    for round in 1..=5u64 {
        let at = round * ORDERS / 7;
        eventually(
            "the load to reach its next kill",
            Duration::from_secs(120),
            async || (placed.lock().await.len() as u64 >= at).then_some(()),
        )
        .await;
        projector.restart()?;
        eventually("the load to go on", Duration::from_secs(120), async || {
            (placed.lock().await.len() as u64 >= at + ORDERS / 28).then_some(())
        })
        .await;
        fulfilment.kill9_and_restart()?;
    }
    while clients.join_next().await.is_some() {}
    let placed = placed.lock().await.clone();
    assert_eq!(
        placed.len() as u64,
        ORDERS,
        "every order placed and confirmed"
    );

    // Every order settled: its stock reserved, or cancelled.
    let settled: BTreeMap<String, Value> = eventually(
        "every order settled by the workflow",
        Duration::from_secs(240),
        async || {
            let mut orders = BTreeMap::new();
            for id in placed.keys() {
                let order: Value = http
                    .get(format!("{api}/orders/{id}"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                if !(order["stock_reserved"] == true || order["status"] == "cancelled") {
                    return None;
                }
                orders.insert(id.clone(), order);
            }
            Some(orders)
        },
    )
    .await;

    // The inventory's log: every state adds up; the fold is the served state.
    let kafka = KafkaConfig::new(
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        format!("crash-{run}"),
    );
    let topics = StreamTopics::new(&format!("{prefix}-inventory"));
    let fold = fold_log_of::<InventoryAggregate>(&kafka, &topics.events).await?;
    for ((id, version), snapshot) in &fold.by_version {
        let stock: &Stock = snapshot.state.as_ref().expect("created first");
        assert_eq!(
            stock.received,
            stock.available + stock.reserved() + stock.shipped,
            "{id} at version {version}"
        );
    }
    for record in read_committed_to_end(&kafka, &topics.changes).await? {
        let change: Value = serde_json::from_slice(record.payload.as_deref().unwrap_or_default())?;
        let state = &change["state"];
        let reserved: u64 = state["reservations"]
            .as_object()
            .map(|held| held.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        assert_eq!(
            state["received"].as_u64(),
            Some(
                state["available"].as_u64().unwrap_or(0)
                    + reserved
                    + state["shipped"].as_u64().unwrap_or(0)
            ),
            "every state of inventory.changes adds up: {state}"
        );
    }
    let mut held: HashMap<(String, String), u64> = HashMap::new();
    for sku in &skus {
        let id = stock_id(&Sku::parse(sku.clone())?);
        let served: Value = http
            .get(format!("{api}/inventory/{sku}"))
            .send()
            .await?
            .json()
            .await?;
        let folded = fold
            .snapshots
            .get(&id)
            .and_then(|s| s.state.as_ref())
            .expect("folded");
        assert_eq!(
            served["available"].as_u64(),
            Some(folded.available),
            "{sku}: served = fold"
        );
        for (order, units) in &folded.reservations {
            held.insert((sku.clone(), order.to_string()), *units);
        }
    }
    let (mut reserved, mut cancelled) = (0, 0);
    for (id, order) in &settled {
        let holding: BTreeMap<&String, u64> = skus
            .iter()
            .filter_map(|sku| Some((sku, *held.get(&(sku.clone(), id.clone()))?)))
            .collect();
        if order["stock_reserved"] == true {
            reserved += 1;
            let mut expected: BTreeMap<&String, u64> = BTreeMap::new();
            for (sku, units) in &placed[id] {
                *expected.entry(sku).or_default() += units;
            }
            assert_eq!(holding, expected, "{id} holds exactly its lines");
        } else {
            cancelled += 1;
            assert!(
                order["cancel_reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("out of stock: ")),
                "{order}"
            );
            assert!(
                holding.is_empty(),
                "{id} was cancelled, yet holds {holding:?}"
            );
        }
    }
    assert!(
        reserved > 0 && cancelled > 0,
        "{reserved} reserved, {cancelled} cancelled"
    );
    // The orders' log agrees: each order as served is the fold of its log.
    let orders = e2e::fold::fold_log(&kafka, &StreamTopics::new(&prefix).events).await?;
    for (id, order) in &settled {
        let folded = orders
            .snapshots
            .get(&Uuid::parse_str(id)?)
            .expect("in the log");
        assert_eq!(order["version"].as_u64(), Some(folded.version), "{id}");
        let state = folded.state.as_ref().expect("placed");
        assert_eq!(order["status"], state.status.as_str(), "{id}");
        assert_eq!(order["stock_reserved"], state.stock_reserved, "{id}");
    }
    // Every reservation belongs to an order that holds its stock.
    for (sku, order) in held.keys() {
        assert_eq!(
            settled[order]["stock_reserved"], true,
            "{order} holds {sku}"
        );
    }
    drop(fulfilment);
    drop(service);
    drop(projector);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
