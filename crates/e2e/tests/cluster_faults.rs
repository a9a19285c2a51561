//! A three-broker cluster under load through the HTTP API, with
//! read-your-writes and every answer checked against the clients' own model,
//! through four faults in turn:
//! - `kill -9` of the broker that leads the most partitions, restarted later;
//! - a rolling restart of all three brokers;
//! - `kill -9` of the broker that coordinates order-service's transactions,
//!   while it commits;
//! - PostgreSQL stopped with `pg_ctl stop -m immediate`, then started.
//!
//! No service is restarted. Afterwards: no acknowledged command is lost or
//! applied twice (every order is where its client left it, and equals the
//! fold of the log), no answer was wrong (only 503/504 with `Retry-After`
//! were retried), `orders.changes` holds each accepted event once, and the
//! read model and the notifier converge. Per fault it prints the longest
//! stretch without an acknowledged command and the throughput before,
//! during and after (docs/benchmarks.md).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e::cluster::{LogsOnFailure, record_answers, wait_all_ready};
use e2e::fold::fold_log;
use e2e::kafka::LocalCluster;
use e2e::load::{Client, Tally, wait_for_acks, wait_for_orders};
use e2e::postgres::PrivateCluster;
use e2e::sinks::smtp::SmtpSink;
use e2e::sinks::webhook::{Behaviour, WebhookSink};
use e2e::stack::Stack;
use e2e::wait::eventually;
use event_store::{StreamTopics, read_committed_to_end};
use notifier::signature::Secret;
use serde_json::Value;
use uuid::Uuid;

const PARTITIONS: i32 = 6;
const CLIENTS: usize = 6;
/// A request is retried (same Idempotency-Key) this long before it counts as wrong.
/// Generous: a command's verdict can wait for the broker's failure detection,
/// the transaction timeout and a rebalance in a row; the longest stretch
/// without an acknowledgement is reported either way.
const RETRY_BOUND: Duration = Duration::from_secs(180);
/// Acknowledged commands that make up "before" and "after" a fault.
const SAMPLE: usize = 150;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_command_is_lost_or_doubled_through_broker_and_database_faults()
-> anyhow::Result<()> {
    let stack = Stack::new("faults", &["projector", "order-service", "notifier"])?;
    let cluster = tokio::task::spawn_blocking({
        let state = stack.dir.join("kafka-state");
        move || LocalCluster::start(3, &state)
    })
    .await??;
    let cluster = Arc::new(cluster);
    let postgres = PrivateCluster::start()?;
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let hooks = WebhookSink::start(
        "127.0.0.1:0".parse()?,
        Secret::parse(SECRET)?,
        Behaviour::default(),
    )
    .await?;
    // Each command's fold and append in the logs, to follow one that went
    // astray when the test fails.
    let traced = [(
        "RUST_LOG".to_owned(),
        "info,event_store::processor=debug,order_service::execute=debug".to_owned(),
    )];
    let stack = stack
        .arg(format!("--kafka-bootstrap-servers={}", cluster.bootstrap()))
        .arg(format!("--partitions={PARTITIONS}"))
        .arg(format!("--database-url={}", postgres.url()))
        .env(&traced);
    let (run, prefix, dir) = (&stack.run, &stack.prefix, &stack.dir);
    let projector = stack.start("projector", [stack.state_dir("projector")])?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    wait_all_ready(
        std::slice::from_ref(&projector),
        &http,
        Duration::from_secs(120),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let api = stack.start(
        "order-service",
        [format!("--projector-url={}", projector.url)],
    )?;
    let notifier = stack.start(
        "notifier",
        [
            format!("--smtp-port={}", smtp.addr.port()),
            format!("--webhook-url={}", hooks.url()),
            format!("--webhook-secret={SECRET}"),
        ],
    )?;
    wait_all_ready(std::slice::from_ref(&api), &http, Duration::from_secs(120))
        .await
        .map_err(anyhow::Error::msg)?;
    // On a failure: each partition's folded and committed offsets and end,
    // as the projector last reported them.
    let partitions = dir.join("partitions.json");
    let recorder = record_answers(
        http.clone(),
        format!("{}/partitions", projector.url),
        partitions.clone(),
    );
    let logs = LogsOnFailure::of(&[&projector, &api, &notifier]).with_file(partitions);

    // Three brokers: every topic the services made has three replicas.
    let topics = StreamTopics::new(prefix);
    let ours = [
        topics.events.as_str(),
        topics.changes.as_str(),
        topics.changelog.as_str(),
    ];
    assert_eq!(
        cluster.replica_counts(&ours)?,
        BTreeSet::from([3]),
        "replication factor 3 on three brokers"
    );

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let client = Client {
                http: http.clone(),
                write_to: api.url.clone(),
                read_from: api.url.clone(),
                tally: tally.clone(),
                retry_bound: RETRY_BOUND,
            };
            let stop = stop.clone();
            tokio::spawn(async move { client.run(n, &stop).await })
        })
        .collect();
    wait_for_orders(&tally, 10).await?;
    // Warm: the first fault's "before" is not the services' first seconds.
    wait_for_acks(&tally, SAMPLE).await?;

    let ours: Vec<String> = ours.iter().map(|t| (*t).to_owned()).collect();
    let whole = async || wait_whole(&cluster, &ours).await;

    let mut report = Vec::new();

    // 1. kill -9 of the broker leading the most partitions, back after the
    //    others carried the load for a while.
    let fault = Fault::begin("kill -9 of the broker leading the most partitions", &tally).await;
    let leaders = blocking(&cluster, {
        let ours = ours.clone();
        move |c| c.leaders(&names(&ours))
    })
    .await?;
    let (&busiest, _) = leaders
        .iter()
        .max_by_key(|(_, count)| **count)
        .ok_or_else(|| anyhow::anyhow!("no leaders"))?;
    blocking(&cluster, move |c| c.kill9(busiest as u32)).await?;
    wait_for_acks(&tally, 2 * SAMPLE).await?;
    blocking(&cluster, LocalCluster::start_missing).await?;
    whole().await;
    report.push(fault.end(&tally).await?);

    // 2. A rolling restart: each broker stopped cleanly and started again,
    //    the next one only once every partition is fully replicated.
    let fault = Fault::begin("rolling restart of the three brokers", &tally).await;
    for node in 1..=3 {
        blocking(&cluster, move |c| c.stop(node)).await?;
        blocking(&cluster, LocalCluster::start_missing).await?;
        whole().await;
    }
    report.push(fault.end(&tally).await?);

    // 3. kill -9 of order-service's transaction coordinator while it commits.
    let fault = Fault::begin("kill -9 of the transaction coordinator", &tally).await;
    let transactional_id = format!("{prefix}-order-service");
    let coordinator = blocking(&cluster, move |c| {
        c.transaction_coordinator(&transactional_id)
    })
    .await?;
    blocking(&cluster, move |c| c.kill9(coordinator as u32)).await?;
    wait_for_acks(&tally, 2 * SAMPLE).await?;
    blocking(&cluster, LocalCluster::start_missing).await?;
    whole().await;
    report.push(fault.end(&tally).await?);

    // 4. PostgreSQL crashes and comes back: the write path does not need it;
    //    the read model and the notifier wait for it and catch up.
    let fault = Fault::begin("PostgreSQL stopped -m immediate, restarted", &tally).await;
    postgres.stop_immediately()?;
    wait_for_acks(&tally, 2 * SAMPLE).await?;
    postgres.start_server()?;
    report.push(fault.end(&tally).await?);

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await?;
    }
    tally.assert_none_wrong().await?;
    println!("| fault | longest without an ack | retried answers | before | during | after |");
    println!("|---|---|---|---|---|---|");
    for line in &report {
        println!("{line}");
    }

    // Nothing lost, nothing doubled: each order is where its client left it,
    // and equals the fold of the log.
    let kafka = cluster.kafka(&format!("e2e-{run}"));
    let fold = fold_log(&kafka, &topics.events).await?;
    tally
        .assert_orders_are_the_fold(&http, &fold, |_| projector.url.clone())
        .await?;

    // The changes topic holds each accepted event once.
    let changes = read_committed_to_end(&kafka, &topics.changes).await?;
    let mut seen = BTreeMap::<Uuid, usize>::new();
    for record in &changes {
        let change: Value = serde_json::from_slice(record.payload.as_deref().unwrap_or_default())?;
        let event_id: Uuid = change["event"]["event_id"]
            .as_str()
            .unwrap_or_default()
            .parse()?;
        *seen.entry(event_id).or_default() += 1;
    }
    assert!(
        seen.values().all(|n| *n == 1),
        "no event twice on the changes topic"
    );
    assert_eq!(
        seen.keys().copied().collect::<BTreeSet<_>>(),
        fold.accepted_events.iter().copied().collect(),
        "the changes topic holds every accepted event"
    );

    // The read model converges on the fold.
    let pool = sqlx::PgPool::connect(&postgres.url()).await?;
    let folded: BTreeMap<Uuid, i64> = fold
        .snapshots
        .iter()
        .map(|(id, s)| (*id, s.version as i64))
        .collect();
    eventually(
        "the read model to equal the fold",
        Duration::from_secs(120),
        async || {
            let rows: Vec<(Uuid, i64)> =
                sqlx::query_as("SELECT id, version FROM read_model.orders")
                    .fetch_all(&pool)
                    .await
                    .ok()?;
            (rows.into_iter().collect::<BTreeMap<_, _>>() == folded).then_some(())
        },
    )
    .await;

    // The notifier converges: every effect of every change sent, every
    // e-mail received.
    let effects_of = notifier::effects::sources()[0].effects_of;
    let mut expected_effects = BTreeSet::new();
    for record in &changes {
        for effect in effects_of(record.payload.as_deref().unwrap_or_default(), true)? {
            expected_effects.insert(effect.id);
        }
    }
    eventually("every effect sent", Duration::from_secs(180), async || {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT effect_id, state FROM notifier.effects")
                .fetch_all(&pool)
                .await
                .ok()?;
        let sent: BTreeSet<String> = rows
            .into_iter()
            .filter(|(_, s)| s == "sent")
            .map(|(id, _)| id)
            .collect();
        (sent == expected_effects).then_some(())
    })
    .await;
    let mails: Vec<String> = smtp
        .received()
        .iter()
        .filter_map(|m| m.header("Message-ID").map(str::to_owned))
        .collect();
    let distinct: BTreeSet<&String> = mails.iter().collect();
    let expected_mails = expected_effects
        .iter()
        .filter(|id| id.starts_with("email:"))
        .count();
    assert_eq!(distinct.len(), expected_mails, "every e-mail arrived");
    println!(
        "notifier: {} effects sent, {} e-mails ({} sent more than once)",
        expected_effects.len(),
        mails.len(),
        mails.len() - distinct.len()
    );

    recorder.abort();
    logs.passed();
    drop((api, projector, notifier));
    drop(cluster);
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

fn names(topics: &[String]) -> Vec<&str> {
    topics.iter().map(String::as_str).collect()
}

/// Waits until no partition of `topics` (or of the internal topics) lacks
/// an in-sync replica.
async fn wait_whole(cluster: &Arc<LocalCluster>, topics: &[String]) {
    eventually(
        "every partition fully replicated",
        Duration::from_secs(120),
        async || {
            let topics = topics.to_vec();
            let under = blocking(cluster, move |c| c.under_replicated(&names(&topics)))
                .await
                .ok()?;
            (under == 0).then_some(())
        },
    )
    .await;
}

/// Runs a blocking call on the cluster off the async workers.
async fn blocking<T: Send + 'static>(
    cluster: &Arc<LocalCluster>,
    call: impl FnOnce(&LocalCluster) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || call(&cluster)).await?
}

/// One fault's measurement: the acknowledgements before it, during it (from
/// its start until the system is whole again) and after it.
struct Fault {
    name: &'static str,
    started: Instant,
    acks_before: usize,
    retried_before: usize,
}

impl Fault {
    /// Waits for a sample of acknowledgements to measure "before", then starts.
    async fn begin(name: &'static str, tally: &Tally) -> Self {
        wait_for_acks(tally, SAMPLE)
            .await
            .unwrap_or_else(|e| panic!("before {name}: {e}"));
        println!("fault: {name}");
        Self {
            name,
            started: Instant::now(),
            acks_before: tally.acks.lock().await.len(),
            retried_before: tally.retried.lock().await.len(),
        }
    }

    /// Measures "after" on the next sample and writes the figures as a row.
    async fn end(self, tally: &Tally) -> anyhow::Result<String> {
        let whole = Instant::now();
        wait_for_acks(tally, SAMPLE).await?;
        let acks = tally.acks.lock().await.clone();
        let retried = tally.retried.lock().await.len() - self.retried_before;
        let rate = |window: &[Instant]| match (window.first(), window.last()) {
            (Some(first), Some(last)) if last > first => {
                format!(
                    "{:.0}/s",
                    (window.len() - 1) as f64 / (*last - *first).as_secs_f64()
                )
            }
            _ => "-".to_owned(),
        };
        let before = &acks[self.acks_before.saturating_sub(SAMPLE)..self.acks_before];
        let during: Vec<Instant> = acks
            .iter()
            .copied()
            .filter(|at| *at >= self.started && *at <= whole)
            .collect();
        let after: Vec<Instant> = acks.iter().copied().filter(|at| *at > whole).collect();
        // The longest stretch with no acknowledgement, from the fault on.
        let mut longest = Duration::ZERO;
        let mut previous = self.started;
        for at in acks
            .iter()
            .copied()
            .filter(|at| *at >= self.started && *at <= whole)
        {
            longest = longest.max(at - previous);
            previous = at;
        }
        Ok(format!(
            "| {} | {:.1} s | {retried} | {} | {} ({:.0} s) | {} |",
            self.name,
            longest.as_secs_f64(),
            rate(before),
            rate(&during),
            (whole - self.started).as_secs_f64(),
            rate(&after[..after.len().min(SAMPLE)]),
        ))
    }
}
