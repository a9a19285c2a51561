//! The web console: one page, served with everything it loads (no build
//! step, nothing fetched from elsewhere), for people trying the demo and for
//! operators.
//!
//! - [`feed`]: the live feed, every entity's changes topic as server-sent
//!   events.
//! - [`upstream`]: order-service's API behind `/api` (the page acts through
//!   it like any client), the projector's, the notifier's and the
//!   fulfilment workflow's operators' endpoints behind `/ops`.
//! - [`dead_letters`]: the dead-letter topics' records and reasons.
//! - [`assets`]: the page, its script and its style sheet.
//! - [`config`]: flags with environment fallbacks.
#![deny(missing_docs)]

pub mod assets;
pub mod config;
pub mod dead_letters;
pub mod feed;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use event_store::{KafkaConfig, StreamTopics};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Config;
use feed::Feed;
use upstream::Upstream;

/// The entity types shown: a fork adds its own here.
pub const ENTITIES: [&str; 2] = ["orders", "inventory"];

/// How long a call to another service may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct AppState {
    feed: Feed,
    stopping: watch::Receiver<bool>,
    api: Upstream,
    projector: Upstream,
    notifier: Upstream,
    fulfilment: Upstream,
    kafka: Arc<KafkaConfig>,
    dead_letter_topics: Arc<[String]>,
}

/// A started console.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    consumer: rdkafka::consumer::StreamConsumer,
    stop: watch::Sender<bool>,
}

impl Application {
    /// Connects to Kafka, subscribes to the changes topics, binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let kafka = config
            .topics
            .connect(&config.instance_id)
            .await
            .context("connecting to Kafka")?;
        let streams: Vec<StreamTopics> = ENTITIES
            .iter()
            .map(|entity| StreamTopics::new(&config.topics.entity_prefix(entity)))
            .collect();
        let changes: Vec<String> = streams.iter().map(|s| s.changes.clone()).collect();
        let mut dead_letter_topics: Vec<String> =
            streams.iter().map(|s| s.events_dlq.clone()).collect();
        dead_letter_topics.push(format!("{}.notifier.dlq", config.topics.topic_prefix));
        // Each console reads the feed for itself, from the end.
        let group = format!(
            "{}-console-{}",
            config.topics.topic_prefix, config.instance_id
        );
        let consumer = feed::consumer(&kafka, &group, &changes)
            .context("subscribing to the changes topics")?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding {} (--http-addr)", config.http_addr))?;
        let http = reqwest::Client::builder()
            .timeout(UPSTREAM_TIMEOUT)
            .build()
            .context("the HTTP client")?;
        let (stop, stopping) = watch::channel(false);
        let state = AppState {
            feed: Feed::default(),
            stopping,
            api: Upstream::new("order-service", &config.order_service_url, http.clone()),
            projector: Upstream::new("the projector", &config.projector_url, http.clone()),
            notifier: Upstream::new("the notifier", &config.notifier_url, http.clone()),
            fulfilment: Upstream::new("the fulfilment workflow", &config.fulfilment_url, http),
            kafka: Arc::new(kafka),
            dead_letter_topics: dead_letter_topics.into(),
        };
        Ok(Self {
            listener,
            state,
            consumer,
            stop,
        })
    }

    /// Where the console is served.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`; open feeds end then, so pages reconnect to
    /// the next instance.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            consumer,
            stop,
        } = self;
        let feed = tokio::spawn(state.feed.clone().run(consumer, state.stopping.clone()));
        let stopping = stop.clone();
        let shutdown = async move {
            shutdown.await;
            stopping.send_replace(true);
        };
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        stop.send_replace(true);
        feed.await.context("the feed's reader")
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::page))
        .route("/assets/{name}", get(assets::asset))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/feed", get(feed))
        .route("/api/{*path}", any(api))
        .route("/ops/projector/{*path}", get(projector))
        .route("/ops/notifier/{*path}", get(notifier))
        .route("/ops/fulfilment/{*path}", get(fulfilment))
        .route("/ops/dead-letters", get(dead_letters))
        .fallback(service_kit::problem::not_found)
        .with_state(state)
}

async fn feed(State(state): State<AppState>) -> impl IntoResponse {
    state.feed.stream(state.stopping.clone())
}

async fn api(
    State(state): State<AppState>,
    Path(path): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.api.forward(method, &path, &uri, &headers, body).await
}

async fn projector(State(state): State<AppState>, Path(path): Path<String>, uri: Uri) -> Response {
    state.projector.get(&path, &uri).await
}

async fn notifier(State(state): State<AppState>, Path(path): Path<String>, uri: Uri) -> Response {
    state.notifier.get(&path, &uri).await
}

async fn fulfilment(State(state): State<AppState>, Path(path): Path<String>, uri: Uri) -> Response {
    state.fulfilment.get(&path, &uri).await
}

async fn dead_letters(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(dead_letters::read(&state.kafka, &state.dead_letter_topics).await)
}
