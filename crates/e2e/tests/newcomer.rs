//! The README's first command as a newcomer runs it: `scripts/demo` with no
//! settings, left to serve orders for a while, then stopped with Ctrl-C. It
//! must serve what the README promises while it runs, stop cleanly, and
//! leave nothing running but the brokers.
//!
//! It uses the demo's default ports, topics and database, so the demo must
//! not be running elsewhere on this machine while the tests run.

use std::time::Duration;

use e2e::scripts::{ScriptRun, nothing_listens};
use e2e::wait::eventually;
use sqlx::PgPool;

/// Where the demo's services listen by default.
const DEMO_PORTS: [&str; 8] = [
    "127.0.0.1:8080",
    "127.0.0.1:8081",
    "127.0.0.1:8082",
    "127.0.0.1:8083",
    "127.0.0.1:8084",
    "127.0.0.1:2525",
    "127.0.0.1:9000",
    "127.0.0.1:4318",
];
const DEFAULT_DATABASE: &str = "postgres://orders:orders@127.0.0.1:5432/orders";

/// Events in the read model so far (none before the first demo made it).
async fn events_in_read_model(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM read_model.order_events")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_orders_until_ctrl_c_and_leaves_only_the_brokers() -> anyhow::Result<()> {
    let root = e2e::cluster::repo_root();
    for port in DEMO_PORTS {
        assert!(nothing_listens(port), "{port} is free for the demo");
    }
    let pool = PgPool::connect(DEFAULT_DATABASE).await?;
    let before = events_in_read_model(&pool).await;

    let mut demo = ScriptRun::start(&root, "demo", &[], &[])?;
    // Orders flow from the API through Kafka and the projector into the read
    // model: 40 more events is 8 s of the default 5 commands/s. The bound
    // covers a build of the workspace's own crates.
    eventually(
        "the demo's orders in the read model",
        Duration::from_secs(900),
        async || {
            assert!(
                demo.is_running().ok()?,
                "the demo keeps running:\n{}",
                demo.output()
            );
            (events_in_read_model(&pool).await >= before + 40).then_some(())
        },
    )
    .await;

    // What the README tells the user to try answers: the console's address
    // comes first, and it serves its page.
    let output = demo.output();
    let first = output
        .lines()
        .skip_while(|line| !line.starts_with("The orders system is running"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        first.contains("console:") && first.contains("http://127.0.0.1:8083"),
        "the console's address first:\n{output}"
    );
    let console = reqwest::get("http://127.0.0.1:8083/")
        .await?
        .error_for_status()?
        .text()
        .await?;
    assert!(console.contains("Orders console"), "{console}");
    let page: serde_json::Value = reqwest::get("http://127.0.0.1:8080/orders?limit=5")
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert!(
        page["orders"]
            .as_array()
            .is_some_and(|orders| !orders.is_empty()),
        "GET /orders lists orders: {page}"
    );
    let sinks_log = root.join(".local/logs/demo/sinks.log");
    eventually(
        "an e-mail at the demo's SMTP receiver",
        Duration::from_secs(60),
        async || {
            let log = std::fs::read_to_string(&sinks_log).ok()?;
            log.contains("e-mail  to ").then_some(())
        },
    )
    .await;

    demo.interrupt()?;
    let status = demo.wait(Duration::from_secs(120)).await?;
    let output = demo.output();
    assert!(
        status.success(),
        "Ctrl-C stops the demo cleanly ({status}):\n{output}"
    );
    assert!(
        output.contains("ok: ") && output.contains("latency ms: p50"),
        "the load printed its summary:\n{output}"
    );
    assert!(
        output.contains("stopped; the brokers keep running"),
        "the demo said it stopped its services:\n{output}"
    );
    let leftovers = demo.leftovers();
    assert!(
        leftovers.is_empty(),
        "nothing of the demo's but the brokers runs after Ctrl-C: {leftovers:#?}"
    );
    for port in DEMO_PORTS {
        assert!(nothing_listens(port), "{port} is free again");
    }
    assert!(
        !nothing_listens("127.0.0.1:9092"),
        "the Kafka broker keeps running"
    );
    assert!(
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&pool)
            .await?
            == 1,
        "PostgreSQL keeps running"
    );
    pool.close().await;
    demo.discard_output()?;
    Ok(())
}
