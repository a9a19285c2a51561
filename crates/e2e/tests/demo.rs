//! The README's first command, run for a bounded time on topics and a
//! database of its own: stock is created and reserved for orders by the
//! fulfilment workflow, orders reach every state, the read model equals the
//! fold of the log, e-mails and webhooks arrive, and each request's trace is
//! printed. (`newcomer.rs` runs it
//! with no settings at all and stops it with Ctrl-C.)

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use domain::aggregate::Snapshot;
use domain::order::Order;
use e2e::fold::{LogFold, fold_log};
use event_store::{KafkaConfig, StreamTopics};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_takes_orders_through_every_state_with_effects() -> anyhow::Result<()> {
    let run = Uuid::now_v7().simple().to_string();
    let prefix = format!("demo-{run}");
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://orders:orders@127.0.0.1:5432/orders".into());
    // The name is ours (a UUID), not input: safe to splice.
    PgConnection::connect(&base)
        .await?
        .execute(AssertSqlSafe(format!(r#"CREATE DATABASE "test_{run}""#)))
        .await?;
    let database_url = format!(
        "{}/test_{run}",
        base.rsplit_once('/').map_or(base.as_str(), |(b, _)| b)
    );

    let root = e2e::cluster::repo_root();
    let demo = tokio::task::spawn_blocking({
        let (root, prefix, database_url) = (root.clone(), prefix.clone(), database_url.clone());
        move || {
            Command::new("bash")
                .arg(root.join("scripts/demo"))
                .env("DEMO_SECONDS", "25")
                .env("DEMO_RATE", "40")
                .env("TOPIC_PREFIX", &prefix)
                .env("DATABASE_URL", &database_url)
                .env(
                    "KAFKA_ORDERS_STATE_DIR",
                    root.join(format!(".local/e2e-{prefix}")),
                )
                .output()
        }
    })
    .await??;
    let log_dir = root.join(format!(".local/e2e-{prefix}/logs/demo"));
    assert!(
        demo.status.success(),
        "the demo ran and stopped cleanly: {}\n{}",
        String::from_utf8_lossy(&demo.stderr),
        log_dir.display()
    );

    let pool = PgPool::connect(&database_url).await?;
    let types: BTreeSet<String> =
        sqlx::query_scalar("SELECT DISTINCT event_type FROM read_model.order_events")
            .fetch_all(&pool)
            .await?
            .into_iter()
            .collect();
    for expected in [
        "OrderPlaced",
        "ItemAdded",
        "OrderConfirmed",
        "OrderShipped",
        "OrderDelivered",
        "OrderCancelled",
    ] {
        assert!(
            types.contains(expected),
            "some order went through {expected}: {types:?}"
        );
    }

    // The read model is the fold of the log (at each order's stored version:
    // the demo stops its services without waiting for the read model's last
    // batch).
    let servers =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let kafka = KafkaConfig::new(servers, format!("e2e-{run}"));
    let LogFold {
        snapshots: fold,
        by_version,
        ..
    } = fold_log(&kafka, &StreamTopics::new(&prefix).events).await?;
    // The `snapshot` column holds the snapshot's JSON bytes.
    let stored: BTreeMap<Uuid, Snapshot<Option<Order>>> =
        sqlx::query_as::<_, (Uuid, Vec<u8>)>("SELECT id, snapshot FROM read_model.orders")
            .fetch_all(&pool)
            .await?
            .into_iter()
            .map(|(id, bytes)| Ok((id, serde_json::from_slice(&bytes)?)))
            .collect::<Result<_, serde_json::Error>>()?;
    assert!(!stored.is_empty());
    for (id, snapshot) in &stored {
        assert_eq!(
            Some(snapshot),
            by_version.get(&(*id, snapshot.version)),
            "{id} in the read model is the fold of the log at version {}",
            snapshot.version
        );
    }
    let current = stored
        .iter()
        .filter(|(id, s)| fold.get(*id) == Some(*s))
        .count();
    assert!(
        current * 10 >= fold.len() * 9,
        "the read model kept up: {current} of {} current",
        fold.len()
    );

    // The demo created stock of the SKUs it sells, and the fulfilment
    // workflow reserved and shipped some of it.
    let stock: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT sku, received, available, reserved, shipped FROM inventory_read_model.stock ORDER BY sku",
    )
    .fetch_all(&pool)
    .await?;
    let received: Vec<(&str, i64)> = stock.iter().map(|s| (s.0.as_str(), s.1)).collect();
    assert_eq!(received, [("BOOK-1", 500), ("HOT-1", 100), ("PEN-2", 200)]);
    for (sku, received, available, reserved, shipped) in &stock {
        assert_eq!(*received, available + reserved + shipped, "{sku}");
    }
    assert!(
        stock.iter().any(|s| s.4 > 0),
        "reserved stock left with shipped orders: {stock:?}"
    );
    assert!(
        types.contains("OrderStockReserved"),
        "the workflow reserved stock for orders: {types:?}"
    );

    // Effects: e-mails and webhooks were sent, and the receivers saw them.
    let sent: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, count(*) FROM notifier.effects WHERE state = 'sent' GROUP BY kind ORDER BY kind",
    )
    .fetch_all(&pool)
    .await?;
    assert!(sent.iter().any(|(k, n)| k == "email" && *n > 0), "{sent:?}");
    assert!(
        sent.iter().any(|(k, n)| k == "webhook" && *n > 0),
        "{sent:?}"
    );
    let sinks = std::fs::read_to_string(log_dir.join("sinks.log"))?;
    assert!(sinks.contains("e-mail  to "), "the SMTP sink received mail");
    assert!(
        sinks.contains("-> 200 (signature ok)"),
        "the webhook sink accepted signed webhooks"
    );
    // Each request's trace, printed as a tree: the fold under the request.
    let traced = sinks.lines().collect::<Vec<_>>().windows(2).any(|pair| {
        pair[0].starts_with("  order-service  POST /orders  201")
            && pair[1].starts_with("    projector  process ")
    });
    assert!(traced, "the trace sink printed a request's trace:\n{sinks}");
    pool.close().await;
    // Kept when the test fails, for its logs.
    std::fs::remove_dir_all(root.join(format!(".local/e2e-{prefix}")))?;
    Ok(())
}
