//! At least once and each effect settled once, across `kill -9`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use e2e::sinks::smtp::SmtpSink;
use e2e::sinks::webhook::{Behaviour, WebhookSink};
use event_store::read_committed_to_end;
use notifier::signature::Secret;

use crate::support::{Notifier, SECRET, TestEnv, changes_of, expected_effects};

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
    // Each kill lands once a share of the work has begun, with the rest
    // (and retries of what failed) still to come.
    env.append(&appender, first).await?;
    env.wait_effects(first.len() / 2).await?;
    notifier.kill9_and_restart();
    env.append(&appender, rest).await?;
    env.wait_effects(2 * first.len() + rest.len() / 2).await?;
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
