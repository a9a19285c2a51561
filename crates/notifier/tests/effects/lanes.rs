//! Delivery lanes: a receiver down for long is caught up with when it
//! returns, and a hanging one holds up only its own effects.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use e2e::sinks::smtp::SmtpSink;
use e2e::sinks::webhook::{Behaviour, WebhookSink};
use e2e::wait::eventually;
use notifier::signature::Secret;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{Notifier, SECRET, TestEnv, changes_of};

/// Effects by state at one destination.
async fn states_at(pool: &PgPool, destination: &str) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT state, count(*) FROM notifier.effects WHERE destination = $1 GROUP BY 1",
    )
    .bind(destination)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
    .into_iter()
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_far_longer_than_a_minute_of_retries_loses_nothing() -> anyhow::Result<()> {
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let down = Behaviour {
        fail_percent: 100,
        ..Behaviour::default()
    };
    let hooks = WebhookSink::start("127.0.0.1:0".parse()?, Secret::parse(SECRET)?, down).await?;
    let env = TestEnv::new().await?;
    // The schedule compressed 60-fold (a day becomes 24 min): the receiver
    // stays down through 8 s of attempts, more than the eight attempts that
    // used to be all an effect got.
    let mut notifier = Notifier::start(
        &env,
        &smtp,
        &hooks.url(),
        &[
            "--max-attempts=1000",
            "--retry-for-s=1440",
            "--backoff-ms=50",
            "--max-backoff-ms=1000",
        ],
    );
    let changes = changes_of(30);
    env.append(&env.appender()?, &changes).await?;
    // Each order's first webhook is retried; its second waits behind it.
    let orders = changes.len() / 2;
    eventually(
        "many failed attempts",
        Duration::from_secs(60),
        async || {
            let retried: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM notifier.effects WHERE kind = 'webhook' AND attempts >= 9",
            )
            .fetch_one(&env.pool)
            .await
            .ok()?;
            (retried as usize == orders).then_some(())
        },
    )
    .await;
    let failing = hooks.received().len();
    hooks.set_behaviour(Behaviour::default());

    let webhooks = eventually("every webhook sent", Duration::from_secs(60), async || {
        let states = states_at(&env.pool, &hooks.url()).await;
        (states.get("sent") == Some(&(changes.len() as i64))).then_some(states)
    })
    .await;
    notifier.terminate();
    assert_eq!(webhooks.len(), 1, "all sent, none failed: {webhooks:?}");
    assert!(failing >= orders * 9, "they were tried while it was down");
    let delivered: std::collections::BTreeSet<String> = hooks
        .received()
        .into_iter()
        .filter(|r| r.status == 200)
        .map(|r| r.id)
        .collect();
    assert_eq!(delivered.len(), changes.len(), "every webhook arrived");
    assert_eq!(
        states_at(&env.pool, "smtp").await.get("sent"),
        Some(&(changes.len() as i64)),
        "e-mails went out meanwhile (each change sends one)"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_holds_up_only_its_own_effects() -> anyhow::Result<()> {
    // The same load twice: beside an endpoint that answers at once, then
    // beside one that hangs past the attempt timeout on every request.
    let answering = Behaviour::default();
    let hanging = Behaviour {
        hang_percent: 100,
        hang: Duration::from_secs(3),
        ..Behaviour::default()
    };
    let flaky = Behaviour {
        fail_percent: 30,
        ..Behaviour::default()
    };
    for (case, beside, measured) in [
        ("beside an answering endpoint", answering, answering),
        ("beside a hanging endpoint", hanging, answering),
        ("30% of attempts failing (500)", answering, flaky),
    ] {
        for (what, latencies) in deliver_beside(beside, measured).await? {
            println!(
                "{what} latency, {case}: p50 {} ms, p99 {} ms ({} deliveries)",
                percentile(&latencies, 0.50),
                percentile(&latencies, 0.99),
                latencies.len()
            );
        }
    }
    Ok(())
}

/// Runs 100 orders' changes over 2.5 s through a notifier with two
/// endpoints, the first behaving as `other`, the second as `measured`;
/// waits until every e-mail and every webhook of the second endpoint is
/// sent, and checks that the first got nothing through if it hangs. Returns
/// the latencies (event to first successful arrival, ms, sorted) of the
/// e-mails and of the second endpoint.
async fn deliver_beside(
    other: Behaviour,
    measured: Behaviour,
) -> anyhow::Result<Vec<(&'static str, Vec<i64>)>> {
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let first = WebhookSink::start("127.0.0.1:0".parse()?, Secret::parse(SECRET)?, other).await?;
    let healthy =
        WebhookSink::start("127.0.0.1:0".parse()?, Secret::parse(SECRET)?, measured).await?;
    let env = TestEnv::new().await?;
    let both = format!("{},{}", first.url(), healthy.url());
    let mut notifier = Notifier::start(
        &env,
        &smtp,
        &both,
        &[
            "--max-attempts=1000",
            "--retry-for-s=600",
            "--attempt-timeout-ms=1000",
            "--backoff-ms=200",
            "--max-backoff-ms=1000",
        ],
    );

    // Each change appended as it happens: 10 orders every 250 ms.
    let appender = env.appender()?;
    let mut changes = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(250));
    for _ in 0..10 {
        pace.tick().await;
        let chunk = changes_of(10);
        env.append(&appender, &chunk).await?;
        changes.extend(chunk);
    }
    let per_destination = changes.len() as i64;
    eventually(
        "the e-mails and the healthy endpoint's webhooks",
        Duration::from_secs(60),
        async || {
            let mail = states_at(&env.pool, "smtp").await;
            let hooks = states_at(&env.pool, &healthy.url()).await;
            (mail.get("sent") == Some(&per_destination)
                && hooks.get("sent") == Some(&per_destination))
            .then_some(())
        },
    )
    .await;
    let beside = states_at(&env.pool, &first.url()).await;
    notifier.terminate();
    if other.hang_percent == 100 {
        assert_eq!(
            beside.get("sent"),
            None,
            "the hanging endpoint got nothing through, yet the others did not wait: {beside:?}"
        );
    }

    let occurred: HashMap<Uuid, DateTime<Utc>> = changes
        .iter()
        .map(|c| (c.event_id, c.occurred_at))
        .collect();
    let mails: Vec<_> = smtp
        .received()
        .into_iter()
        .filter_map(|m| Some((event_of_message_id(m.header("Message-ID")?)?, m.at)))
        .collect();
    let hooks: Vec<_> = healthy
        .received()
        .into_iter()
        .filter(|r| r.status == 200)
        .filter_map(|r| Some((r.id.strip_prefix("webhook:")?.parse().ok()?, r.at)))
        .collect();
    let latencies = vec![
        ("e-mail", latencies_ms(&occurred, &mails)),
        ("webhook", latencies_ms(&occurred, &hooks)),
    ];
    for (what, latencies) in &latencies {
        assert_eq!(latencies.len(), changes.len(), "every {what} arrived");
    }
    Ok(latencies)
}

/// The event of an e-mail's `<email.<event id>@notifier.orders>`.
fn event_of_message_id(id: &str) -> Option<Uuid> {
    id.trim_matches(['<', '>'])
        .strip_prefix("email.")?
        .split('@')
        .next()?
        .parse()
        .ok()
}

/// From each event to its first arrival, in ms, sorted.
fn latencies_ms(
    occurred: &HashMap<Uuid, DateTime<Utc>>,
    arrivals: &[(Uuid, DateTime<Utc>)],
) -> Vec<i64> {
    let mut first: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for (event, at) in arrivals {
        first
            .entry(*event)
            .and_modify(|t| *t = (*t).min(*at))
            .or_insert(*at);
    }
    let mut latencies: Vec<i64> = first
        .iter()
        .filter_map(|(event, at)| Some((*at - *occurred.get(event)?).num_milliseconds()))
        .collect();
    latencies.sort_unstable();
    latencies
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}
