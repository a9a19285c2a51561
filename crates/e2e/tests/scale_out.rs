//! Three projectors (one standby copy per partition) and two order-services
//! on one machine, under load from clients that each own their orders. One
//! projector is killed with `kill -9` and later started again. Every answer
//! is either correct (the version and status the client's own model
//! expects) or a retryable 503/504 with `Retry-After`; the killed
//! instance's partitions are taken over by the members that kept standby
//! copies; and in the end every order's state equals the fold of the log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use e2e::cluster::{Service, build_binaries, key_in_partition, wait_all_ready};
use e2e::fold::fold_log;
use e2e::wait::eventually;
use event_store::{KafkaConfig, StreamTopics, partition_for_key};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

const PARTITIONS: i32 = 6;
const CLIENTS: usize = 6;
/// A request is retried (same Idempotency-Key) this long before the test fails.
const RETRY_BOUND: Duration = Duration::from_secs(90);

/// What the clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    retryable: AtomicU64,
    wrong: Mutex<Vec<String>>,
    /// Each order's version after its last acknowledged command.
    orders: Mutex<BTreeMap<Uuid, (u64, &'static str)>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_projector_is_taken_over_and_no_answer_is_wrong() -> anyhow::Result<()> {
    let bin = build_binaries(&["projector", "order-service"])?;
    let run = Uuid::now_v7().simple().to_string();
    let prefix = format!("scale-{run}");
    let root = e2e::cluster::repo_root();
    let dir = root.join(format!(".local/e2e-{prefix}"));
    std::fs::create_dir_all(&dir)?;
    let servers =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let topic_args = [
        format!("--kafka-bootstrap-servers={servers}"),
        format!("--topic-prefix={prefix}"),
        format!("--partitions={PARTITIONS}"),
    ];

    let mut projectors = Vec::new();
    for name in ["projector-a", "projector-b", "projector-c"] {
        let mut args = topic_args.to_vec();
        args.extend([
            format!("--group-id={prefix}-projector"),
            format!("--instance-id={name}"),
            format!("--state-dir={}", dir.join(name).display()),
            "--standby-replicas=1".into(),
            "--session-timeout-ms=6000".into(),
            "--read-model=false".into(),
        ]);
        projectors.push(Service::start(name, bin.join("projector"), args, &dir)?);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    wait_all_ready(&projectors, &http, Duration::from_secs(120))
        .await
        .map_err(anyhow::Error::msg)?;
    let projector_urls: Vec<String> = projectors.iter().map(|p| p.url.clone()).collect();
    let settled = wait_settled(&http, &projector_urls, 3).await?;
    println!("group settled: {settled}");

    let mut services = Vec::new();
    for name in ["order-service-1", "order-service-2"] {
        let mut args = topic_args.to_vec();
        args.extend([
            format!("--instance-id={prefix}-{name}"),
            format!("--projector-url={}", projector_urls.join(",")),
        ]);
        services.push(Service::start(name, bin.join("order-service"), args, &dir)?);
    }
    wait_all_ready(&services, &http, Duration::from_secs(60))
        .await
        .map_err(anyhow::Error::msg)?;
    let service_urls: Vec<String> = services.iter().map(|s| s.url.clone()).collect();

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let client = Client {
                http: http.clone(),
                write_to: service_urls[n % 2].clone(),
                read_from: service_urls[(n + 1) % 2].clone(),
                tally: tally.clone(),
            };
            let stop = stop.clone();
            tokio::spawn(async move { client.run(n, &stop).await })
        })
        .collect();

    wait_for_orders(&tally, 20).await?;
    // The instances that will take the victim's partitions over keep copies of them.
    let victim = 1;
    let victim_partitions = partitions_of(&http, &projector_urls[victim], "partitions").await?;
    anyhow::ensure!(!victim_partitions.is_empty(), "the victim owns partitions");
    let mut warm = BTreeMap::new();
    for (i, url) in projector_urls.iter().enumerate() {
        if i != victim {
            for partition in partitions_of(&http, url, "standbys").await? {
                warm.insert(partition, url.clone());
            }
        }
    }
    let copies: Vec<(i32, Uuid, String)> = victim_partitions
        .iter()
        .filter_map(|&p| Some((p, key_in_partition(p, PARTITIONS), warm.get(&p)?.clone())))
        .collect();
    assert_eq!(
        copies.len(),
        victim_partitions.len(),
        "standby copies of {victim_partitions:?} are kept elsewhere: {warm:?}"
    );

    // Standby reads of acknowledged orders: possibly behind, never wrong
    // (checked against the fold below). A copy that has not caught up yet
    // does not know the newest orders, so ask again (bounded) until one does.
    let standby_answers = eventually(
        "a standby copy to answer",
        Duration::from_secs(30),
        async || {
            let mut answers = Vec::new();
            let acknowledged: Vec<Uuid> = tally.orders.lock().await.keys().copied().collect();
            for id in acknowledged {
                let partition = partition_for_key(id.to_string().as_bytes(), PARTITIONS);
                let Some(holder) = warm
                    .get(&partition)
                    .filter(|_| victim_partitions.contains(&partition))
                else {
                    continue;
                };
                let response = http
                    .get(format!("{holder}/orders/{id}?standby=true"))
                    .send()
                    .await
                    .ok()?;
                if response.status() == 200 {
                    assert_eq!(response.headers()["x-standby"], "true");
                    let lag: i64 = response.headers()["x-standby-lag"]
                        .to_str()
                        .ok()?
                        .parse()
                        .ok()?;
                    assert!(lag >= 0);
                    answers.push((id, response.json::<Value>().await.ok()?));
                }
            }
            (!answers.is_empty()).then_some(answers)
        },
    )
    .await;

    // kill -9 the owner of some partitions; measure until its partitions answer
    // again: from the copies (standby reads) and from their new owners.
    let survivor = projector_urls[(victim + 1) % 3].clone();
    let through_survivor: Vec<(i32, Uuid, String)> = copies
        .iter()
        .map(|(p, id, _)| (*p, *id, survivor.clone()))
        .collect();
    projectors[victim].kill9();
    let killed_at = Instant::now();
    let standby_reads = measure_until(&http, &copies, true, killed_at);
    let owner_reads = measure_until(&http, &through_survivor, false, killed_at);
    let (standby_reads, owner_reads) = tokio::join!(standby_reads, owner_reads);
    println!(
        "after kill -9: standby reads answered after {:?}, owner reads (takeover) after {:?}",
        standby_reads?, owner_reads?
    );
    let mut takeovers = 0.0;
    for (i, url) in projector_urls.iter().enumerate() {
        if i != victim {
            takeovers += metric(&http, url, "projector_standby_takeovers_total").await?;
        }
    }
    assert!(
        takeovers >= victim_partitions.len() as f64,
        "the new owners took over from their standby copies ({takeovers})"
    );
    let orders_before_restart = tally.orders.lock().await.len();
    wait_for_orders(&tally, orders_before_restart + 20).await?;

    // Add it back: it rejoins, the partitions move again, the answers stay right.
    projectors[victim].restart()?;
    projectors[victim]
        .wait_ready(&http, Duration::from_secs(120))
        .await
        .map_err(anyhow::Error::msg)?;
    wait_settled(&http, &projector_urls, 3).await?;
    let orders_after_restart = tally.orders.lock().await.len();
    wait_for_orders(&tally, orders_after_restart + 20).await?;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await?;
    }

    let wrong = tally.wrong.lock().await;
    println!(
        "answers: {} correct, {} retryable, {} wrong; {} orders",
        tally.ok.load(Ordering::Relaxed),
        tally.retryable.load(Ordering::Relaxed),
        wrong.len(),
        tally.orders.lock().await.len()
    );
    assert!(
        wrong.is_empty(),
        "wrong answers: {:#?}",
        &wrong[..wrong.len().min(10)]
    );

    // Every order's state, read through any instance (forwarded to its
    // owner), equals the fold of the log and the client's own model.
    let kafka = KafkaConfig::new(servers.as_str(), format!("e2e-{run}"));
    let fold = fold_log(&kafka, &StreamTopics::new(&prefix).events).await?;
    for (id, answer) in &standby_answers {
        let version = answer["version"].as_u64().unwrap_or(0);
        let folded = serde_json::to_value(&fold.by_version[&(*id, version)])?;
        assert_eq!(
            answer, &folded,
            "the standby answer for {id} is the fold at its version"
        );
    }
    let expected = tally.orders.lock().await.clone();
    for (n, (id, (version, status))) in expected.iter().enumerate() {
        let via = &projector_urls[n % 3];
        let answer: Value = http
            .get(format!(
                "{via}/orders/{id}?min_version={version}&wait_ms=20000"
            ))
            .send()
            .await?
            .json()
            .await?;
        let folded = serde_json::to_value(&fold.snapshots[id])?;
        assert_eq!(
            answer, folded,
            "order {id} via {via} is the fold of the log"
        );
        assert_eq!(
            (
                answer["version"].as_u64(),
                answer["state"]["status"].as_str()
            ),
            (Some(*version), Some(*status)),
            "order {id} is where its client left it"
        );
    }
    drop(services);
    drop(projectors);
    // Kept when the test fails, for the logs.
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// One client: places orders and takes each through its life, checking
/// every answer against its own model of the order.
struct Client {
    http: reqwest::Client,
    write_to: String,
    read_from: String,
    tally: Arc<Tally>,
}

impl Client {
    async fn run(&self, n: usize, stop: &AtomicBool) {
        let mut count = 0u64;
        while !stop.load(Ordering::Relaxed) {
            count += 1;
            let cancel = count.is_multiple_of(4);
            let place = json!({
                "customer_id": format!("customer-{n}"),
                "email": "scale@example.com",
                "items": [{"sku": "BOOK-1", "quantity": 1, "unit_price_cents": 1500}]
            });
            let Some(placed) = self
                .command("/orders".into(), Some(place), 1, "placed")
                .await
            else {
                return;
            };
            let Some(id) = placed["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()) else {
                self.wrong(format!("a placed order without an id: {placed}"))
                    .await;
                return;
            };
            let mut steps: Vec<(String, Option<Value>, &'static str)> = vec![
                (
                    format!("/orders/{id}/items"),
                    Some(json!({"sku": "PEN-2", "quantity": 2, "unit_price_cents": 250})),
                    "placed",
                ),
                (format!("/orders/{id}/confirm"), None, "confirmed"),
            ];
            if cancel {
                let reason = json!({"reason": "changed my mind"});
                steps.push((format!("/orders/{id}/cancel"), Some(reason), "cancelled"));
            } else {
                let parcel = json!({"carrier": "DHL", "tracking_number": format!("JD{n}x{count}")});
                steps.push((format!("/orders/{id}/ship"), Some(parcel), "shipped"));
                steps.push((format!("/orders/{id}/deliver"), None, "delivered"));
            }
            self.tally.orders.lock().await.insert(id, (1, "placed"));
            for (version, (path, body, status)) in (2..).zip(steps) {
                if self.command(path, body, version, status).await.is_none() {
                    return;
                }
                self.tally.orders.lock().await.insert(id, (version, status));
                // Read-your-writes through the other order-service.
                if !self.read(id, version, status).await {
                    return;
                }
            }
        }
    }

    /// Sends a command until it gets a final answer; retries carry the same key.
    async fn command(
        &self,
        path: String,
        body: Option<Value>,
        version: u64,
        status: &str,
    ) -> Option<Value> {
        let key = Uuid::now_v7().to_string();
        let url = format!("{}{path}", self.write_to);
        let answer = self
            .until_final(&url, || {
                let request = self.http.post(&url).header("idempotency-key", &key);
                match &body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await?;
        self.check(&url, &answer, version, status)
            .await
            .then_some(answer)
    }

    async fn read(&self, id: Uuid, version: u64, status: &str) -> bool {
        let url = format!("{}/orders/{id}", self.read_from);
        match self.until_final(&url, || self.http.get(&url)).await {
            Some(answer) => self.check(&url, &answer, version, status).await,
            None => false,
        }
    }

    /// Retries 503/504 answers that carry `Retry-After`; anything else is final.
    async fn until_final(
        &self,
        url: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Option<Value> {
        let deadline = Instant::now() + RETRY_BOUND;
        loop {
            let response = match request().send().await {
                Ok(response) => response,
                Err(error) => {
                    self.wrong(format!("{url}: no answer: {error}")).await;
                    return None;
                }
            };
            let code = response.status().as_u16();
            let retryable =
                matches!(code, 503 | 504) && response.headers().contains_key("retry-after");
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if (200..300).contains(&code) {
                self.tally.ok.fetch_add(1, Ordering::Relaxed);
                return Some(body);
            }
            if !retryable || Instant::now() >= deadline {
                self.wrong(format!("{url}: {code} {body}")).await;
                return None;
            }
            self.tally.retryable.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn check(&self, url: &str, answer: &Value, version: u64, status: &str) -> bool {
        let right = answer["version"].as_u64() == Some(version)
            && answer["status"].as_str() == Some(status);
        if !right {
            self.wrong(format!(
                "{url}: expected version {version} {status}, got {answer}"
            ))
            .await;
        }
        right
    }

    async fn wrong(&self, what: String) {
        self.tally.wrong.lock().await.push(what);
    }
}

/// Waits until the clients have acknowledged `count` orders (or one went wrong).
async fn wait_for_orders(tally: &Tally, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    while tally.orders.lock().await.len() < count {
        let wrong = tally.wrong.lock().await;
        anyhow::ensure!(
            wrong.is_empty(),
            "wrong answers: {:#?}",
            &wrong[..wrong.len().min(10)]
        );
        drop(wrong);
        anyhow::ensure!(Instant::now() < deadline, "{count} orders not reached");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until every instance's description of the group is stable, with
/// `members` members and every partition assigned.
async fn wait_settled(
    http: &reqwest::Client,
    urls: &[String],
    members: usize,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut views = Vec::new();
        for url in urls {
            if let Ok(response) = http.get(format!("{url}/partitions")).send().await
                && let Ok(view) = response.json::<Value>().await
            {
                views.push(view["group"].clone());
            }
        }
        let settled = views.len() == urls.len()
            && views.iter().all(|group| {
                let assigned: usize = group["members"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .map(|m| m["partitions"].as_array().map_or(0, Vec::len))
                            .sum()
                    })
                    .unwrap_or(0);
                group["stable"] == true
                    && group["members"].as_array().map(Vec::len) == Some(members)
                    && assigned == PARTITIONS as usize
                    && *group == views[0]
            });
        if settled {
            return Ok(views[0].clone());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the group did not settle: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A counter or gauge without labels from an instance's `/metrics`.
async fn metric(http: &reqwest::Client, url: &str, name: &str) -> anyhow::Result<f64> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0))
}

/// The partitions an instance lists under `field` (`partitions` it owns,
/// `standbys` it keeps copies of).
async fn partitions_of(
    http: &reqwest::Client,
    url: &str,
    field: &str,
) -> anyhow::Result<BTreeSet<i32>> {
    let view: Value = http
        .get(format!("{url}/partitions"))
        .send()
        .await?
        .json()
        .await?;
    Ok(numbers(&view[field], "partition"))
}

fn numbers(list: &Value, field: &str) -> BTreeSet<i32> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry[field].as_i64().and_then(|n| i32::try_from(n).ok()))
        .collect()
}

/// How long after `since` a query for each probe (partition, unused order
/// id, instance to ask) first got an answer from a store (404: no such
/// order there); the longest.
async fn measure_until(
    http: &reqwest::Client,
    probes: &[(i32, Uuid, String)],
    standby: bool,
    since: Instant,
) -> anyhow::Result<Duration> {
    let deadline = since + Duration::from_secs(120);
    let mut longest = Duration::ZERO;
    for (partition, id, via) in probes {
        let url = format!("{via}/orders/{id}?standby={standby}");
        loop {
            let response = http.get(&url).send().await?;
            if response.status() == 404 {
                longest = longest.max(since.elapsed());
                break;
            }
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            anyhow::ensure!(
                status == 503 && Instant::now() < deadline,
                "partition {partition} via {via}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(longest)
}
