//! One attempt at a real receiver: what a redirect, an absent receiver and a
//! hanging one come to, and e-mail ids a standard parser accepts.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use notifier::delivery::{Attempt, Deliverer, WebhookTarget, message_id};
use notifier::effects::{Effect, Email, Kind};
use notifier::signature::Secret;
use uuid::Uuid;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn effect(kind: Kind) -> Effect {
    let event_id = Uuid::now_v7();
    Effect {
        id: format!("{}:{event_id}", kind.as_str()),
        kind,
        entity_type: "order".into(),
        entity_id: Uuid::now_v7(),
        event_id,
        event_type: "OrderPlaced".into(),
        email: Some(Email {
            to: "customer@example.com".into(),
            subject: "Your order".into(),
            text: "Thank you.".into(),
        }),
        body: br#"{"type":"OrderPlaced"}"#.to_vec(),
        traceparent: None,
    }
}

fn deliverer_to(url: &str, timeout: Duration) -> (Deliverer, WebhookTarget) {
    let target = WebhookTarget {
        url: url.to_owned(),
        secret: Secret::parse(SECRET).expect("a valid secret"),
    };
    let deliverer = Deliverer::new(
        "127.0.0.1",
        1,
        "Orders <orders@example.com>",
        vec![target.clone()],
        timeout,
    )
    .expect("a deliverer");
    (deliverer, target)
}

/// A receiver that redirects `/302` and `/307` to `/elsewhere`, counts what
/// reaches `/elsewhere`, and never answers `/hang`.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let reached = Arc::new(AtomicUsize::new(0));
    let redirect = |status: StatusCode| {
        move || async move { (status, [(header::LOCATION, "/elsewhere")]).into_response() }
    };
    let app = Router::new()
        .route("/302", post(redirect(StatusCode::FOUND)))
        .route("/307", post(redirect(StatusCode::TEMPORARY_REDIRECT)))
        .route(
            "/elsewhere",
            post({
                let reached = reached.clone();
                move || async move {
                    reached.fetch_add(1, Ordering::SeqCst);
                    StatusCode::OK
                }
            })
            .get({
                let reached = reached.clone();
                move || async move {
                    reached.fetch_add(1, Ordering::SeqCst);
                    StatusCode::OK
                }
            }),
        )
        .route("/hang", post(std::future::pending::<StatusCode>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), reached)
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_nothing_reaches_its_target() {
    let (base, reached) = receiver().await;
    for status in ["302", "307"] {
        let (deliverer, target) = deliverer_to(&format!("{base}/{status}"), Duration::from_secs(5));
        let attempt = deliverer
            .webhook_attempt(
                &target,
                &effect(Kind::Webhook),
                chrono::Utc::now().timestamp(),
            )
            .await;
        match attempt {
            Attempt::Retry { error, .. } => {
                assert!(
                    error.contains(status),
                    "the error names the {status}: {error}"
                )
            }
            other => panic!("a {status} is not a delivery: {other:?}"),
        }
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "no redirect was followed"
    );
}

#[tokio::test]
async fn an_absent_and_a_hanging_receiver_say_what_happened() {
    let (base, _) = receiver().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("an address")
        .port();
    let (deliverer, target) = deliverer_to(
        &format!("http://127.0.0.1:{port}/hooks"),
        Duration::from_secs(5),
    );
    let now = chrono::Utc::now().timestamp();
    match deliverer
        .webhook_attempt(&target, &effect(Kind::Webhook), now)
        .await
    {
        Attempt::Retry { error, .. } => {
            assert!(error.contains("could not connect"), "{error}")
        }
        other => panic!("nobody listens: {other:?}"),
    }

    let (deliverer, target) = deliverer_to(&format!("{base}/hang"), Duration::from_millis(300));
    match deliverer
        .webhook_attempt(&target, &effect(Kind::Webhook), now)
        .await
    {
        Attempt::Retry { error, .. } => assert!(error.contains("timed out"), "{error}"),
        other => panic!("the receiver hangs: {other:?}"),
    }
}

#[test]
fn message_ids_are_valid_msg_ids_and_one_per_effect() {
    let ids: Vec<String> = (0..20).map(|_| message_id(&effect(Kind::Email))).collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "unique per effect"
    );
    let effect = effect(Kind::Email);
    assert_eq!(
        message_id(&effect),
        message_id(&effect),
        "stable across retries"
    );

    // Python's e-mail package parses them as a receiver would, and lists any
    // defect it finds.
    let check = r#"
import sys
from email import policy
from email.parser import HeaderParser
for mid in sys.argv[1:]:
    header = HeaderParser(policy=policy.default).parsestr(f"Message-ID: {mid}\n\n")["Message-ID"]
    if header.defects or str(header) != mid:
        print(f"{mid}: {list(header.defects)} -> {str(header)!r}")
"#;
    let output = Command::new("python3")
        .args(["-c", check])
        .args(&ids)
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{output:?}");
    let defects = String::from_utf8_lossy(&output.stdout);
    assert!(defects.is_empty(), "invalid Message-IDs:\n{defects}");
}
