//! A webhook endpoint that verifies signatures and misbehaves on purpose:
//! a share of requests get 500, some 429 with `Retry-After`, some hang past
//! the sender's timeout. Every request is recorded with what it was told.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use notifier::signature::Secret;
use tokio::net::TcpListener;

/// How the endpoint misbehaves, per 100 requests (deterministically spread).
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    /// Answer 500.
    pub fail_percent: u64,
    /// Answer 429 with `Retry-After: 1`.
    pub throttle_percent: u64,
    /// Hang this long before answering 200 (past the sender's timeout).
    pub hang_percent: u64,
    /// How long a hang lasts.
    pub hang: Duration,
    /// Answer every request 410 Gone.
    pub gone: bool,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// Whether the signature verified.
    pub verified: bool,
    /// What it was answered (200 means delivered).
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Its `traceparent` header, if any.
    pub traceparent: Option<String>,
}

/// The running endpoint.
#[derive(Clone)]
pub struct WebhookSink {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Sink>,
}

struct Sink {
    secret: Secret,
    behaviour: Mutex<Behaviour>,
    count: AtomicU64,
    received: Mutex<Vec<Received>>,
}

impl WebhookSink {
    /// Listens on `addr` (port 0 picks one); POSTs to any path are webhooks.
    pub async fn start(
        addr: SocketAddr,
        secret: Secret,
        behaviour: Behaviour,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let state = Arc::new(Sink {
            secret,
            behaviour: Mutex::new(behaviour),
            count: AtomicU64::new(0),
            received: Mutex::default(),
        });
        let router = Router::new()
            .route("/{*path}", post(receive))
            .route("/", post(receive))
            .with_state(state.clone());
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Self { addr, state })
    }

    /// The URL to configure as the notifier's `--webhook-url`.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/orders", self.addr)
    }

    /// Misbehaves differently from now on (a receiver that recovers).
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self
            .state
            .behaviour
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = behaviour;
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state
            .received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

async fn receive(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let id = header("webhook-id");
    let verified = sink
        .secret
        .verify(
            &id,
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            &body,
            chrono::Utc::now().timestamp(),
        )
        .is_ok();
    // Spread the misbehaviour evenly: request n gets slot n mod 100.
    let slot = sink.count.fetch_add(1, Ordering::Relaxed).wrapping_mul(37) % 100;
    let b = *sink
        .behaviour
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (status, hang) = if !verified {
        (StatusCode::UNAUTHORIZED, false)
    } else if b.gone {
        (StatusCode::GONE, false)
    } else if slot < b.fail_percent {
        (StatusCode::INTERNAL_SERVER_ERROR, false)
    } else if slot < b.fail_percent + b.throttle_percent {
        (StatusCode::TOO_MANY_REQUESTS, false)
    } else if slot < b.fail_percent + b.throttle_percent + b.hang_percent {
        (StatusCode::OK, true)
    } else {
        (StatusCode::OK, false)
    };
    let at = chrono::Utc::now();
    if hang {
        // The sender gives up first; whatever it does next, this is not a
        // delivery it saw succeed.
        tokio::time::sleep(b.hang).await;
    }
    sink.received
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(Received {
            id,
            verified,
            status: if hang { 0 } else { status.as_u16() },
            body: body.to_vec(),
            at,
            traceparent: Some(header("traceparent")).filter(|t| !t.is_empty()),
        });
    let mut response = status.into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
    }
    response
}
