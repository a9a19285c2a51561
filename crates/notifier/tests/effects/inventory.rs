//! The inventory's effect: low stock, announced once per crossing.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::inventory::{self, InventoryAggregate, InventoryEvent};
use e2e::sinks::smtp::SmtpSink;
use e2e::sinks::webhook::{Behaviour, WebhookSink};
use e2e::wait::eventually;
use event_store::StreamTopics;
use notifier::signature::Secret;
use uuid::Uuid;

use crate::support::{Notifier, SECRET, TestEnv, change_records};

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
    // Everything read: the lag is 0 on every partition, not 1 (the
    // transaction marker after the last record is no record to read).
    let metrics = format!("{}/metrics", notifier.base_url);
    eventually("no lag at rest", Duration::from_secs(30), async || {
        let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
        let samples = text
            .lines()
            .filter(|l| l.starts_with("notifier_lag{"))
            .count();
        (samples > 0 && e2e::metrics::sum(&text, "notifier_lag") == 0.0).then_some(())
    })
    .await;
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
