//! An endpoint that answers 410 Gone, and what operators do about it.

use std::time::Duration;

use e2e::sinks::smtp::SmtpSink;
use e2e::sinks::webhook::{Behaviour, WebhookSink};
use e2e::wait::eventually;
use notifier::signature::Secret;
use serde_json::{Value, json};

use crate::support::{Notifier, SECRET, TestEnv, changes_of, expected_effects};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_disables_the_endpoint_and_later_webhooks_are_not_sent() -> anyhow::Result<()> {
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let gone = WebhookSink::start(
        "127.0.0.1:0".parse()?,
        Secret::parse(SECRET)?,
        Behaviour {
            gone: true,
            ..Behaviour::default()
        },
    )
    .await?;
    let env = TestEnv::new().await?;
    // One order at a time, so no second webhook is already in flight when
    // the first 410 arrives.
    let mut notifier = Notifier::start(&env, &smtp, &gone.url(), &["--concurrency=1"]);
    let changes = changes_of(5);
    env.append(&env.appender()?, &changes).await?;
    let table = env.wait_settled(&expected_effects(&changes)).await?;
    notifier.terminate();

    assert_eq!(gone.received().len(), 1, "nothing is sent after the 410");
    let webhooks: Vec<&String> = table
        .iter()
        .filter(|(id, _)| id.starts_with("webhook:"))
        .map(|(_, s)| s)
        .collect();
    assert!(webhooks.iter().all(|s| *s == "failed"));
    let disabled: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifier.disabled_endpoints WHERE url = $1")
            .bind(gone.url())
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(disabled, 1);
    assert_eq!(
        table
            .iter()
            .filter(|(id, s)| id.starts_with("email:") && *s == "sent")
            .count(),
        changes.len(),
        "e-mails are not affected"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_enables_the_endpoint_again_and_what_it_missed_is_sent() -> anyhow::Result<()> {
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let gone = WebhookSink::start(
        "127.0.0.1:0".parse()?,
        Secret::parse(SECRET)?,
        Behaviour {
            gone: true,
            ..Behaviour::default()
        },
    )
    .await?;
    let env = TestEnv::new().await?;
    let mut notifier = Notifier::start(&env, &smtp, &gone.url(), &["--concurrency=1"]);
    let changes = changes_of(5);
    env.append(&env.appender()?, &changes).await?;
    env.wait_settled(&expected_effects(&changes)).await?;
    let api = Operator::new(&notifier);

    let (status, endpoints) = api.get("/endpoints").await?;
    assert_eq!(status, 200);
    assert_eq!(endpoints["endpoints"][0]["disabled"], true, "{endpoints}");
    assert_eq!(endpoints["endpoints"][0]["failed"], changes.len());
    let (_, failed) = api
        .get(&format!("/effects?state=failed&destination={}", gone.url()))
        .await?;
    assert_eq!(
        failed["effects"].as_array().map(Vec::len),
        Some(changes.len()),
        "{failed}"
    );
    // One order's effects, in every state: its e-mails sent, its webhooks
    // failed (the endpoint is gone).
    let order = changes[0].entity_id;
    let (_, of_order) = api.get(&format!("/effects?entity_id={order}")).await?;
    let mut states: Vec<(String, String)> = of_order["effects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            assert_eq!(e["entity_id"], order.to_string(), "{e}");
            (e["kind"].to_string(), e["state"].to_string())
        })
        .collect();
    states.sort();
    let of_each = changes.iter().filter(|c| c.entity_id == order).count();
    let mut expected = vec![("\"email\"".to_owned(), "\"sent\"".to_owned()); of_each];
    expected.extend(vec![
        ("\"webhook\"".to_owned(), "\"failed\"".to_owned());
        of_each
    ]);
    assert_eq!(states, expected, "{of_order}");

    // Bad requests are refused, saying why, and change nothing.
    for (method, path, body, expected) in [
        ("GET", "/effects?state=lost".to_owned(), None, 400),
        ("GET", "/effects?limit=0".to_owned(), None, 400),
        ("GET", "/effects?entity_id=not-an-id".to_owned(), None, 400),
        (
            "POST",
            "/effects/webhook:nothing/resend".to_owned(),
            None,
            404,
        ),
        (
            "POST",
            "/destinations/resend".to_owned(),
            Some(json!({ "destination": "http://elsewhere/" })),
            404,
        ),
        (
            "POST",
            "/endpoints/enable".to_owned(),
            Some(json!({ "url": "http://elsewhere/", "resend_missed": true })),
            409,
        ),
        (
            "POST",
            "/endpoints/enable".to_owned(),
            Some(json!({ "url": gone.url() })),
            422,
        ),
    ] {
        let (status, problem) = api.send(method, &path, body).await?;
        assert_eq!(status, expected, "{method} {path}: {problem}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{problem}"
        );
    }

    // The receiver is back: enabled, with what it missed sent again.
    gone.set_behaviour(Behaviour::default());
    let (status, enabled) = api
        .send(
            "POST",
            "/endpoints/enable",
            Some(json!({ "url": gone.url(), "resend_missed": true })),
        )
        .await?;
    assert_eq!((status, &enabled["pending"]), (200, &json!(changes.len())));
    eventually(
        "what it missed, delivered",
        Duration::from_secs(60),
        async || {
            let delivered = gone.received().iter().filter(|r| r.status == 200).count();
            (delivered == changes.len()).then_some(())
        },
    )
    .await;

    // One e-mail sent again on request, under the same Message-ID.
    let event = changes[0].event_id;
    let (status, resent) = api
        .send("POST", &format!("/effects/email:{event}/resend"), None)
        .await?;
    assert_eq!((status, &resent["pending"]), (200, &json!(1)), "{resent}");
    let message_id = format!("<email.{event}@notifier.orders>");
    eventually("the e-mail again", Duration::from_secs(30), async || {
        let copies = smtp
            .received()
            .iter()
            .filter(|m| m.header("Message-ID") == Some(message_id.as_str()))
            .count();
        (copies == 2).then_some(())
    })
    .await;
    notifier.terminate();
    Ok(())
}

/// The notifier's operators' API.
struct Operator {
    http: reqwest::Client,
    base_url: String,
}

impl Operator {
    fn new(notifier: &Notifier) -> Self {
        Self {
            http: reqwest::Client::new(),
            base_url: notifier.base_url.clone(),
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.send("GET", path, None).await
    }

    /// Status and JSON body; an error is a problem document.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .http
            .request(method.parse()?, format!("{}{path}", self.base_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        if status >= 400 {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{method} {path}"
            );
        }
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}
