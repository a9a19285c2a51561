//! One request, one trace: a POST with the caller's W3C `traceparent` is
//! followed through order-service, the Kafka records, the projector's fold
//! and read model and the notifier's deliveries, to the e-mail and the
//! webhook. Every
//! service exports its spans over OTLP to a receiver in this test, which
//! checks each span's service, trace, parent and links against the ids the
//! records and the requests carried.

use std::time::Duration;

use e2e::sinks::otlp::{OtlpSink, Span};
use e2e::sinks::smtp::SmtpSink;
use e2e::sinks::webhook::{Behaviour, WebhookSink};
use e2e::stack::Stack;
use e2e::wait::eventually;
use event_store::trace_context::TraceParent;
use event_store::{CommittedRecord, KafkaConfig, StreamTopics, read_committed_to_end};
use notifier::signature::Secret;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};
use uuid::Uuid;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_post_is_one_trace_from_the_request_to_the_webhook() -> anyhow::Result<()> {
    let stack = Stack::new("traces", &["projector", "order-service", "notifier"])?;
    let database_url = e2e::postgres::fresh_database(&format!("test_{}", stack.run)).await?;
    let otlp = OtlpSink::start("127.0.0.1:0".parse()?).await?;
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let hooks = WebhookSink::start(
        "127.0.0.1:0".parse()?,
        Secret::parse(SECRET)?,
        Behaviour::default(),
    )
    .await?;
    // The standard variables, and a short batch delay so spans arrive soon.
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), otlp.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()),
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
        ("RUST_LOG".to_owned(), "info,order_service=debug".to_owned()),
    ];
    let stack = stack
        .arg("--partitions=2")
        .arg(format!("--database-url={database_url}"))
        .env(&env);
    let projector = stack.start("projector", vec![stack.state_dir("projector")])?;
    let http = reqwest::Client::new();
    let ready = Duration::from_secs(90);
    projector
        .wait_ready(&http, ready)
        .await
        .map_err(anyhow::Error::msg)?;
    let api = stack.start(
        "order-service",
        vec![format!("--projector-url={}", projector.url)],
    )?;
    let _notifier = stack.start(
        "notifier",
        vec![
            format!("--smtp-port={}", smtp.addr.port()),
            format!("--webhook-url={}", hooks.url()),
            format!("--webhook-secret={SECRET}"),
        ],
    )?;
    api.wait_ready(&http, ready)
        .await
        .map_err(anyhow::Error::msg)?;

    let placed = http
        .post(format!("{}/orders", api.url))
        .header("idempotency-key", Uuid::now_v7().to_string())
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&json!({
            "customer_id": "customer-traced",
            "email": "traced@example.com",
            "items": [{"sku": "SKU-1", "quantity": 1, "unit_price_cents": 900}]
        }))
        .send()
        .await?;
    assert_eq!(placed.status(), 201, "{}", placed.text().await?);
    let id = placed.json::<Value>().await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // What the records, the e-mail and the webhook carry.
    let kafka = KafkaConfig::new(e2e::kafka::bootstrap(), "trace-check");
    let topics = StreamTopics::new(&stack.prefix);
    let events = read_committed_to_end(&kafka, &topics.events).await?;
    let changes = eventually("the changes record", Duration::from_secs(60), async || {
        let records = read_committed_to_end(&kafka, &topics.changes).await.ok()?;
        records
            .iter()
            .any(|r| r.key.as_deref() == Some(id.as_bytes()))
            .then_some(records)
    })
    .await;
    let appended = record_parent(&events, &id, "the events record");
    let folded = record_parent(&changes, &id, "the changes record");
    let hook = eventually(
        "the placement webhook",
        Duration::from_secs(60),
        async || {
            hooks.received().into_iter().find(|r| {
                serde_json::from_slice::<Value>(&r.body).is_ok_and(|b| {
                    b["type"] == "order.placed" && b["data"]["state"]["id"] == id.as_str()
                })
            })
        },
    )
    .await;
    let hooked = header_parent(hook.traceparent.as_deref(), "the webhook");
    let subject = format!("Order {id} received");
    let mail = eventually(
        "the placement e-mail",
        Duration::from_secs(60),
        async || {
            smtp.received()
                .into_iter()
                .find(|m| m.header("Subject") == Some(subject.as_str()))
        },
    )
    .await;
    let mailed = header_parent(mail.header("Traceparent"), "the e-mail");

    // The exported spans, each named by what handed it on.
    let spans = eventually("the exported spans", Duration::from_secs(60), async || {
        let spans: Vec<Span> = otlp
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == TRACE_ID)
            .collect();
        let has = |id: &str| spans.iter().any(|s| s.span_id == id);
        [&appended, &folded, &hooked, &mailed]
            .into_iter()
            .all(|id| has(id))
            .then_some(spans)
    })
    .await;
    let span = |id: &str| {
        spans
            .iter()
            .find(|s| s.span_id == id)
            .cloned()
            .unwrap_or_else(|| panic!("span {id} among {spans:#?}"))
    };

    let request = span(&appended);
    assert_eq!(
        (
            request.service.as_str(),
            request.name.as_str(),
            request.kind
        ),
        ("order-service", "POST /orders", SpanKind::Server),
        "{request:#?}"
    );
    assert_eq!(request.parent_span_id, CALLER_SPAN, "the caller's child");
    assert_eq!(request.attribute("http.request.method"), Some("POST"));
    assert_eq!(request.attribute("http.route"), Some("/orders"));
    assert_eq!(request.attribute("http.response.status_code"), Some("201"));

    let fold = span(&folded);
    assert_eq!(
        (fold.service.as_str(), fold.kind),
        ("projector", SpanKind::Consumer),
        "{fold:#?}"
    );
    assert_eq!(fold.name, format!("process {}", topics.events));
    assert_eq!(fold.parent_span_id, appended, "the request's child");
    assert!(
        fold.links
            .contains(&(TRACE_ID.to_owned(), appended.clone())),
        "linked to the producer's span: {fold:#?}"
    );
    let event = events
        .iter()
        .find(|r| r.key.as_deref() == Some(id.as_bytes()))
        .expect("the events record");
    for (key, value) in [
        ("messaging.system", "kafka".to_owned()),
        ("messaging.destination.name", topics.events.clone()),
        (
            "messaging.destination.partition.id",
            event.partition.to_string(),
        ),
        ("messaging.kafka.offset", event.offset.to_string()),
        ("messaging.kafka.message.key", id.clone()),
        ("command.verdict", "accepted".to_owned()),
    ] {
        assert_eq!(fold.attribute(key), Some(value.as_str()), "{key}");
    }

    // The read model writes batches: a span of its own trace, linked to the
    // span of each record it wrote.
    let request_link = (TRACE_ID.to_owned(), appended.clone());
    let batch = eventually(
        "the read model's batch span",
        Duration::from_secs(30),
        async || {
            otlp.spans().into_iter().find(|s| {
                s.attribute("messaging.batch.message_count").is_some()
                    && s.links.contains(&request_link)
            })
        },
    )
    .await;
    assert_eq!(
        (batch.service.as_str(), batch.kind),
        ("projector", SpanKind::Consumer),
        "{batch:#?}"
    );
    assert_eq!(
        batch.attribute("messaging.destination.name"),
        Some(topics.events.as_str())
    );
    assert_eq!(batch.attribute("db.system.name"), Some("postgresql"));

    for (delivered, kind) in [(&hooked, "webhook"), (&mailed, "email")] {
        let delivery = span(delivered);
        assert_eq!(
            (delivery.service.as_str(), delivery.kind),
            ("notifier", SpanKind::Client),
            "{delivery:#?}"
        );
        assert_eq!(delivery.name, format!("deliver {kind}"));
        assert_eq!(delivery.parent_span_id, folded, "the fold's child");
        assert_eq!(delivery.attribute("entity.id"), Some(id.as_str()));
        assert!(!delivery.failed, "{delivery:#?}");
    }

    // order-service's JSON log lines inside the command carry its trace.
    let log = std::fs::read_to_string(api.log_path())?;
    let in_trace = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|s| s["name"] == "command" && s["trace_id"] == TRACE_ID)
            })
        })
        .count();
    assert!(in_trace >= 1, "a JSON log line in the command's span");
    std::fs::remove_dir_all(&stack.dir)?;
    Ok(())
}

/// The span id in the `traceparent` header of the record keyed `id`, after
/// checking it continues the caller's trace.
fn record_parent(records: &[CommittedRecord], id: &str, what: &str) -> String {
    let record = records
        .iter()
        .find(|r| r.key.as_deref() == Some(id.as_bytes()))
        .unwrap_or_else(|| panic!("{what}: a record of the order"));
    let value = record
        .headers
        .iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    header_parent(value.as_deref(), what)
}

/// The span id a `traceparent` value names, after checking its trace.
fn header_parent(value: Option<&str>, what: &str) -> String {
    let value = value.unwrap_or_else(|| panic!("{what} carries traceparent"));
    let parent = TraceParent::parse(value).unwrap_or_else(|| panic!("{what}: {value}"));
    assert_eq!(
        parent.trace_id_hex(),
        TRACE_ID,
        "{what} continues the trace"
    );
    parent.span_id_hex()
}
