//! Guarantee 3: the PostgreSQL read model equals the fold of the log, across
//! `kill -9` of the projector, an immediate stop of PostgreSQL, a rebuild
//! (of one entity's model, leaving the other's alone), and paging under
//! concurrent writes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::process::Command;
use std::time::Duration;

use domain::order::Order;
use read_model::queries::{ListOrders, list_orders};
use read_model::tables::decode_snapshot;
use sqlx::{AssertSqlSafe, Connection, PgPool};
use uuid::Uuid;

use crate::support::database::TestDatabase;
use crate::support::process::Projector;
use crate::support::stock_writer::{StockSnapshot, StockWriter};
use crate::support::{PARTITIONS, Rng, eventually, fresh_topics, inventory_topics, kafka, write};
use e2e::fold::{LogFold, fold_log};
use e2e::postgres::PrivateCluster;

type OrderSnapshot = domain::aggregate::Snapshot<Option<Order>>;

#[tokio::test]
async fn migrations_apply_to_an_empty_schema_and_again_as_a_no_op() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let pool =
        read_model::connect(&db.url, &read_model::ORDERS, read_model::ORDERS.live, 2).await?;
    read_model::schema::prepare(&pool, &read_model::ORDERS, read_model::ORDERS.live).await?;

    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await?;
    assert_eq!(applied as usize, read_model::ORDERS.migrator.iter().count());
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'read_model' ORDER BY table_name",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "offsets",
            "order_events",
            "order_lines",
            "orders"
        ]
    );
    let negative = sqlx::query("INSERT INTO offsets VALUES ('orders.events', 0, -1)")
        .execute(&pool)
        .await;
    assert!(negative.is_err(), "a negative offset is refused");
    pool.close().await;
    db.drop().await
}

/// The binary COPY encoder against PostgreSQL's own decoding of each type
/// the model writes, NULL and a time before 2000 (PostgreSQL's epoch) included.
#[tokio::test]
async fn binary_copy_rows_read_back_as_written() -> anyhow::Result<()> {
    use chrono::{DateTime, TimeZone, Utc};
    use read_model::copy::CopyRows;

    let db = TestDatabase::create().await?;
    let mut conn = sqlx::PgConnection::connect(&db.url).await?;
    sqlx::query(
        "CREATE TABLE copied (id uuid, name text, doc json, raw bytea, small int4, big int8,
                              at timestamptz, never timestamptz)",
    )
    .execute(&mut conn)
    .await?;
    let id = Uuid::now_v7();
    let at = Utc
        .with_ymd_and_hms(1999, 12, 31, 23, 59, 58)
        .single()
        .expect("a time")
        + chrono::Duration::microseconds(123_456);
    let mut rows = CopyRows::new(8);
    rows.row()
        .uuid(&id)
        .text("crème brûlée")
        .text(r#"{"a":[1,2]}"#)
        .bytes(&[0, 159, 255])
        .int4(-7)
        .int8(i64::MAX)
        .timestamptz(Some(at))
        .timestamptz(None);
    assert_eq!(rows.len(), 1);
    let stored = rows
        .send(&mut conn, "COPY copied FROM STDIN (FORMAT binary)")
        .await?;
    assert_eq!(stored, 1);

    type Row = (
        Uuid,
        String,
        String,
        Vec<u8>,
        i32,
        i64,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    );
    let row: Row =
        sqlx::query_as("SELECT id, name, doc::text, raw, small, big, at, never FROM copied")
            .fetch_one(&mut conn)
            .await?;
    assert_eq!(
        row,
        (
            id,
            "crème brûlée".to_owned(),
            r#"{"a":[1,2]}"#.to_owned(),
            vec![0, 159, 255],
            -7,
            i64::MAX,
            at,
            None
        )
    );
    drop(conn);
    db.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_a_postgres_crash_leave_the_read_model_equal_to_the_fold() -> anyhow::Result<()>
{
    let seed = 0x5eed_0101;
    let cluster = PrivateCluster::start()?;
    let url = cluster.url();
    let topics = fresh_topics().await?;
    let group = format!("test-group-{}", Uuid::now_v7().simple());
    let state_dir = std::env::temp_dir().join(&group);
    let mut projector =
        Projector::start_with_env(&topics, &group, &state_dir, &[], &[("DATABASE_URL", &url)])
            .await;

    // Small transactions, so the writer is still going while the kills land.
    let writer = tokio::spawn({
        let topics = topics.clone();
        async move { write(&topics, 60, 3_000, 2, seed).await }
    });
    let mut rng = Rng::new(seed);
    for _ in 0..3 {
        let records = 100 + rng.below(600);
        projector
            .wait_folded(records, || writer.is_finished())
            .await;
        projector.crash_and_restart().await;
    }
    writer.await??;

    // PostgreSQL crashes: the state store goes on, the read model retries.
    cluster.stop_immediately()?;
    let during_outage = write(&topics, 60, 500, 5, seed + 1).await?;
    projector
        .wait_caught_up(&during_outage.ends(PARTITIONS))
        .await;
    eventually(
        "the read model to notice the outage",
        Duration::from_secs(60),
        async || (projector.metric("read_model_errors_total").await > 0.0).then_some(()),
    )
    .await;
    cluster.start_server()?;

    let fold = fold_log(&kafka(), &topics.events).await?;
    let pool = read_model::connect(&url, &read_model::ORDERS, read_model::ORDERS.live, 2).await?;
    wait_until_equal(&pool, &fold).await?;
    assert_events_match(&pool, &fold).await?;
    projector.terminate();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_equals_the_live_model_and_reads_go_on_during_it() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let topics = fresh_topics().await?;
    let mut projector = projector_with_database(&topics, &db.url).await;
    write(&topics, 200, 3_000, 50, 0x5eed_0102).await?;
    let pool =
        read_model::connect(&db.url, &read_model::ORDERS, read_model::ORDERS.live, 4).await?;
    wait_until_equal(&pool, &fold_log(&kafka(), &topics.events).await?).await?;
    // Marks the live copy, to see that the rebuild really replaced it.
    sqlx::query("COMMENT ON SCHEMA read_model IS 'before the rebuild'")
        .execute(&pool)
        .await?;

    // Readers page through the live model throughout the rebuild, and a
    // writer keeps appending, so the swap happens under load.
    let (stop_reading, reading) = tokio::sync::watch::channel(false);
    let reader = tokio::spawn(read_continuously(pool.clone(), reading));
    let writer = tokio::spawn({
        let topics = topics.clone();
        async move { write(&topics, 200, 1_000, 10, 0x5eed_0103).await }
    });
    let rebuild = tokio::task::spawn_blocking({
        let (args, url) = (projector.args().to_vec(), db.url.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_projector"))
                .args(&args)
                .arg("rebuild-read-model")
                .env("DATABASE_URL", url)
                .output()
        }
    })
    .await??;
    assert!(
        rebuild.status.success(),
        "the rebuild succeeds: {}",
        String::from_utf8_lossy(&rebuild.stderr)
    );
    writer.await??;
    stop_reading.send_replace(true);
    let (reads, failures) = reader.await?;
    assert!(reads > 0, "reads ran during the rebuild");
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "every read during the rebuild answered"
    );

    let comment: Option<String> =
        sqlx::query_scalar("SELECT obj_description('read_model'::regnamespace, 'pg_namespace')")
            .fetch_one(&pool)
            .await?;
    assert_eq!(comment, None, "the live schema is the rebuilt one");
    let fold = fold_log(&kafka(), &topics.events).await?;
    wait_until_equal(&pool, &fold).await?;
    assert_events_match(&pool, &fold).await?;
    projector.terminate();
    pool.close().await;
    db.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_the_inventorys_model_leaves_the_orders_model_alone() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let topics = fresh_topics().await?;
    let stock_topics = inventory_topics(&topics);
    let mut projector = projector_with_database(&topics, &db.url).await;
    write(&topics, 100, 1_000, 25, 0x5eed_0106).await?;
    let stock = tokio::task::spawn_blocking({
        let stock_topics = stock_topics.clone();
        move || -> anyhow::Result<StockWriter> {
            let mut writer = StockWriter::new(&kafka(), &stock_topics, 20, PARTITIONS, 7)?;
            writer.append(600, 20)?;
            Ok(writer)
        }
    })
    .await??;
    let orders =
        read_model::connect(&db.url, &read_model::ORDERS, read_model::ORDERS.live, 4).await?;
    let inventory = read_model::connect(
        &db.url,
        &read_model::INVENTORY,
        read_model::INVENTORY.live,
        2,
    )
    .await?;
    wait_until_equal(&orders, &fold_log(&kafka(), &topics.events).await?).await?;
    let expected: BTreeMap<Uuid, StockSnapshot> =
        stock.expected().map(|(id, s)| (id, s.clone())).collect();
    wait_until_stock_equal(&inventory, &expected).await?;
    for (schema, mark) in [
        ("read_model", "orders"),
        ("inventory_read_model", "inventory"),
    ] {
        sqlx::query(AssertSqlSafe(format!(
            "COMMENT ON SCHEMA {schema} IS '{mark}'"
        )))
        .execute(&orders)
        .await?;
    }

    // Orders keep being written and read while the inventory is rebuilt.
    let (stop_reading, reading) = tokio::sync::watch::channel(false);
    let reader = tokio::spawn(read_continuously(orders.clone(), reading));
    let writer = tokio::spawn({
        let topics = topics.clone();
        async move { write(&topics, 100, 1_000, 10, 0x5eed_0107).await }
    });
    let rebuild = |entity: &'static str| {
        let (args, url) = (projector.args().to_vec(), db.url.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_projector"))
                .args(&args)
                .args(["rebuild-read-model", "--entity", entity])
                .env("DATABASE_URL", url)
                .output()
        })
    };
    let rebuilt = rebuild("inventory").await??;
    assert!(
        rebuilt.status.success(),
        "the rebuild succeeds: {}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert!(String::from_utf8_lossy(&rebuilt.stdout).contains("inventory read model rebuilt"));
    writer.await??;
    stop_reading.send_replace(true);
    let (reads, failures) = reader.await?;
    assert!(reads > 0, "orders were read during the rebuild");
    assert_eq!(failures, Vec::<String>::new(), "every read answered");

    let comment = |schema: &'static str| {
        sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(format!(
            "SELECT obj_description('{schema}'::regnamespace, 'pg_namespace')"
        )))
        .fetch_one(&orders)
    };
    assert_eq!(
        comment("inventory_read_model").await?,
        None,
        "the inventory's is rebuilt"
    );
    assert_eq!(
        comment("read_model").await?.as_deref(),
        Some("orders"),
        "the orders' model is the same schema, never swapped"
    );
    wait_until_stock_equal(&inventory, &expected).await?;
    wait_until_equal(&orders, &fold_log(&kafka(), &topics.events).await?).await?;

    // An entity the projector does not host is a clear start-up error.
    let unknown = rebuild("widgets").await??;
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("--entity") && stderr.contains("inventory"),
        "names the setting and what is hosted: {stderr}"
    );
    projector.terminate();
    orders.close().await;
    inventory.close().await;
    db.drop().await
}

/// Waits until the `stock` table holds exactly `expected`, its count
/// columns agreeing with the snapshots.
async fn wait_until_stock_equal(
    pool: &PgPool,
    expected: &BTreeMap<Uuid, StockSnapshot>,
) -> anyhow::Result<()> {
    eventually(
        "the stock table to match the log",
        Duration::from_secs(60),
        async || {
            let rows: Vec<(Uuid, Vec<u8>, i64, i64, i64, i64)> = sqlx::query_as(
                "SELECT id, snapshot, received, available, reserved, shipped FROM stock",
            )
            .fetch_all(pool)
            .await
            .ok()?;
            let stored = rows
                .iter()
                .filter_map(|(id, bytes, ..)| Some((*id, decode_snapshot(bytes).ok()?)))
                .collect::<BTreeMap<Uuid, StockSnapshot>>();
            let columns_agree =
                rows.iter()
                    .all(|(id, _, received, available, reserved, shipped)| {
                        stored
                            .get(id)
                            .and_then(|s| s.state.as_ref())
                            .is_some_and(|s| {
                                [s.received, s.available, s.reserved(), s.shipped]
                                    .map(|n| i64::try_from(n).unwrap_or(-1))
                                    == [*received, *available, *reserved, *shipped]
                            })
                    });
            (stored == *expected && columns_agree).then_some(())
        },
    )
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_under_concurrent_writes_returns_every_order_once() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let topics = fresh_topics().await?;
    let mut projector = projector_with_database(&topics, &db.url).await;
    write(&topics, 150, 600, 20, 0x5eed_0104).await?;
    let pool =
        read_model::connect(&db.url, &read_model::ORDERS, read_model::ORDERS.live, 4).await?;
    let fold = fold_log(&kafka(), &topics.events).await?;
    wait_until_equal(&pool, &fold).await?;
    let existing: BTreeSet<Uuid> = fold.snapshots.keys().copied().collect();

    // New orders and changes to old ones land while the pages are read.
    let writer = tokio::spawn({
        let topics = topics.clone();
        async move { write(&topics, 150, 1_500, 5, 0x5eed_0105).await }
    });
    let mut seen = Vec::new();
    let mut request = ListOrders {
        limit: 7,
        ..ListOrders::default()
    };
    // Paced, so the pages are read over the time the writer writes.
    let mut pace = tokio::time::interval(Duration::from_millis(5));
    loop {
        pace.tick().await;
        let page = list_orders(&pool, &request).await?;
        assert!(page.orders.len() <= 7);
        seen.extend(
            page.orders
                .iter()
                .filter_map(|s| s.state.as_ref().map(|o| o.id)),
        );
        match page.next {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    writer.await??;

    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no order appears twice");
    let missing: Vec<_> = existing.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "every order that existed appears: missing {missing:?}"
    );
    projector.terminate();
    pool.close().await;
    db.drop().await
}

/// A projector on `topics` with a group and state folder of its own, whose
/// read model goes to `database_url`.
async fn projector_with_database(
    topics: &event_store::StreamTopics,
    database_url: &str,
) -> Projector {
    let group = format!("test-group-{}", Uuid::now_v7().simple());
    let state_dir = std::env::temp_dir().join(&group);
    Projector::start_with_env(
        topics,
        &group,
        &state_dir,
        &[],
        &[("DATABASE_URL", database_url)],
    )
    .await
}

/// Pages through the whole model until told to stop; returns how many pages
/// were read and what failed.
async fn read_continuously(
    pool: PgPool,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (u64, Vec<String>) {
    let (mut reads, mut failures) = (0, Vec::new());
    while !*stop.borrow() {
        let mut request = ListOrders {
            limit: 100,
            ..ListOrders::default()
        };
        loop {
            match list_orders(&pool, &request).await {
                Ok(page) => {
                    reads += 1;
                    match page.next {
                        Some(cursor) => request.cursor = Some(cursor),
                        None => break,
                    }
                }
                Err(error) => {
                    failures.push(error.to_string());
                    break;
                }
            }
        }
    }
    (reads, failures)
}

/// Waits until the model holds exactly the fold's orders, each with the
/// fold's snapshot (state, version, recent commands).
async fn wait_until_equal(pool: &PgPool, fold: &LogFold) -> anyhow::Result<()> {
    let expected: BTreeMap<Uuid, &OrderSnapshot> = fold
        .snapshots
        .iter()
        .filter(|(_, s)| s.state.is_some())
        .map(|(id, s)| (*id, s))
        .collect();
    // Ok: equal, or the query failed; Err: (stored, differing) so far.
    let equal = e2e::wait::until(Duration::from_secs(120), async || {
        let rows: Vec<(Uuid, Vec<u8>)> = match sqlx::query_as("SELECT id, snapshot FROM orders")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows,
            Err(error) => return Ok(Err(error)),
        };
        let stored = match rows
            .into_iter()
            .map(|(id, bytes)| Ok((id, decode_snapshot(&bytes)?)))
            .collect::<Result<BTreeMap<_, _>, sqlx::Error>>()
        {
            Ok(stored) => stored,
            Err(error) => return Ok(Err(error)),
        };
        let differing = expected
            .iter()
            .filter(|(id, s)| stored.get(*id) != Some(**s))
            .count();
        if stored.len() == expected.len() && differing == 0 {
            Ok(Ok(()))
        } else {
            Err((stored.len(), differing))
        }
    })
    .await;
    match equal {
        Ok(queried) => Ok(queried?),
        Err((stored, differing)) => anyhow::bail!(
            "the read model never matched the fold: {} orders expected, {stored} stored, {differing} differ",
            expected.len()
        ),
    }
}

/// The history holds each accepted event once, with gapless versions per
/// order, and the lines match each order's state.
async fn assert_events_match(pool: &PgPool, fold: &LogFold) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, i64, Uuid)> = sqlx::query_as(
        "SELECT order_id, version, event_id FROM order_events ORDER BY order_id, version",
    )
    .fetch_all(pool)
    .await?;
    let ids: HashSet<Uuid> = rows.iter().map(|(_, _, id)| *id).collect();
    assert_eq!(ids.len(), rows.len(), "no event twice");
    assert_eq!(ids, fold.accepted_events, "exactly the accepted events");
    let mut versions: BTreeMap<Uuid, Vec<i64>> = BTreeMap::new();
    for (order, version, _) in rows {
        versions.entry(order).or_default().push(version);
    }
    for (order, list) in &versions {
        let expected: Vec<i64> = (1..=list.len() as i64).collect();
        assert_eq!(list, &expected, "gapless versions of {order}");
        let snapshot = &fold.snapshots[order];
        assert_eq!(
            list.len() as u64,
            snapshot.version,
            "{order}'s history is its version"
        );
    }
    let lines: Vec<(Uuid, String, i32)> = sqlx::query_as(
        "SELECT order_id, sku, quantity FROM order_lines ORDER BY order_id, position",
    )
    .fetch_all(pool)
    .await?;
    let mut stored: BTreeMap<Uuid, Vec<(String, i32)>> = BTreeMap::new();
    for (order, sku, quantity) in lines {
        stored.entry(order).or_default().push((sku, quantity));
    }
    for (id, snapshot) in &fold.snapshots {
        let Some(order) = &snapshot.state else {
            continue;
        };
        let expected: Vec<(String, i32)> = order
            .lines
            .iter()
            .map(|l| (l.sku.to_string(), l.quantity.get() as i32))
            .collect();
        assert_eq!(
            stored.get(id).cloned().unwrap_or_default(),
            expected,
            "lines of {id}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_read_model_reports_each_partitions_end() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let topics = fresh_topics().await?;
    // One lane holds every partition, so a batch can hold records of some
    // of them only: it must not take back the end the others reached.
    let group = format!("test-group-{}", Uuid::now_v7().simple());
    let mut projector = Projector::start_with_env(
        &topics,
        &group,
        &std::env::temp_dir().join(&group),
        &["--read-model-lanes=1"],
        &[("DATABASE_URL", &db.url)],
    )
    .await;
    let pool =
        read_model::connect(&db.url, &read_model::ORDERS, read_model::ORDERS.live, 2).await?;
    // Transactions end in a commit marker, which each partition's end counts
    // and no record stands for.
    write(&topics, 40, 120, 10, 0x5eed_0106).await?;
    wait_until_equal(&pool, &fold_log(&kafka(), &topics.events).await?).await?;
    // Then one order more, in one partition, after the others reached their ends.
    write(&topics, 1, 1, 1, 0x5eed_0107).await?;
    wait_until_equal(&pool, &fold_log(&kafka(), &topics.events).await?).await?;

    let probe = event_store::probe::KafkaProbe::new(&kafka())?;
    let mut ends = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let end = probe
            .end_offset(&topics.events, partition, Duration::from_secs(10))
            .await?;
        ends.insert(partition, end);
    }
    assert!(
        ends.values().all(|end| *end > 0),
        "records were written: {ends:?}"
    );
    let http = reqwest::Client::new();
    let mut reported = BTreeMap::new();
    let at_ends = e2e::wait::within(Duration::from_secs(20), async || {
        let metrics = e2e::metrics::scrape(&http, &projector.base_url)
            .await
            .ok()?;
        reported = ends
            .keys()
            .map(|partition| {
                let labels = [("entity", "orders"), ("partition", &*partition.to_string())];
                (
                    *partition,
                    metrics.sample("read_model_next_offset", &labels),
                )
            })
            .collect();
        ends.iter()
            .all(|(partition, end)| reported[partition] == Some(*end as f64))
            .then_some(())
    })
    .await;
    assert!(
        at_ends.is_some(),
        "the read model's positions {reported:?} reach the partitions' ends {ends:?}"
    );
    projector.terminate();
    pool.close().await;
    db.drop().await
}
