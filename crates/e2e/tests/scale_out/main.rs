//! Three projectors (one standby copy per partition) and two order-services
//! on one machine, under load from clients that each own their orders. One
//! projector is killed with `kill -9` and later started again. Every answer
//! is either correct (the version and status the client's own model
//! expects) or a retryable 503/504 with `Retry-After`; the killed
//! instance's partitions are taken over by the members that kept standby
//! copies; and in the end every order's state equals the fold of the log.
//!
//! Layout: this file is the test; `e2e::load` is the load (clients with
//! their own model of their orders) and what they saw; `group` asks the
//! projectors about their group, partitions and metrics.

mod group;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e::cluster::{Service, build_binaries, key_in_partition, wait_all_ready};
use e2e::fold::fold_log;
use e2e::wait::eventually;
use event_store::{KafkaConfig, StreamTopics, partition_for_key};
use serde_json::Value;
use uuid::Uuid;

use e2e::load::{Client, Tally, wait_for_orders};
use group::{measure_until, metric, partitions_of, wait_settled};

const PARTITIONS: i32 = 6;
const CLIENTS: usize = 6;
/// A request is retried (same Idempotency-Key) this long before the test fails.
const RETRY_BOUND: Duration = Duration::from_secs(90);

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
                retry_bound: RETRY_BOUND,
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

    tally.assert_none_wrong().await?;

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
    tally
        .assert_orders_are_the_fold(&http, &fold, |n| projector_urls[n % 3].clone())
        .await?;
    drop(services);
    drop(projectors);
    // Kept when the test fails, for the logs.
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
