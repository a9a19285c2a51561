//! Start-up, health and metrics on their own port, graceful shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use event_store::{
    Appender, AppenderSettings, KafkaConfig, StreamTopics, TopicSpec, ensure_topics,
};
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::json;
use service_kit::metrics::MetricsText;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Config;
use crate::delivery::{Deliverer, WebhookTarget};
use crate::effects;
use crate::ledger::Ledger;
use crate::signature::Secret;
use crate::worker::{Metrics, Worker};

/// A started notifier.
pub struct Application {
    listener: TcpListener,
    worker: Worker,
    stop: watch::Sender<bool>,
    state: HttpState,
}

#[derive(Clone)]
struct HttpState {
    metrics: Arc<Metrics>,
    consumer: Arc<StreamConsumer>,
    /// The changes topics consumed.
    topics: Vec<String>,
}

impl Application {
    /// Checks the settings and topics, connects, binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let webhook = match (&config.webhook_url, &config.webhook_secret) {
            (Some(url), Some(secret)) => Some(WebhookTarget {
                url: url.clone(),
                secret: Secret::parse(secret).context("--webhook-secret")?,
            }),
            (None, None) => None,
            (Some(_), None) => anyhow::bail!("--webhook-url needs --webhook-secret (whsec_...)"),
            (None, Some(_)) => anyhow::bail!("--webhook-secret is set but --webhook-url is not"),
        };
        let deliverer = Deliverer::new(
            &config.smtp_host,
            config.smtp_port,
            &config.mail_from,
            webhook,
            Duration::from_millis(config.attempt_timeout_ms),
        )
        .map_err(anyhow::Error::msg)?;
        let kafka = KafkaConfig::new(&config.topics.kafka_bootstrap_servers, &config.instance_id);
        let dlq_topic = config.dlq_topic();
        let mut specs = vec![TopicSpec::permanent_log(
            &dlq_topic,
            config.topics.partitions,
        )];
        let mut sources = HashMap::new();
        for source in effects::sources() {
            let topics = StreamTopics::new(&config.topics.entity_prefix(source.entity));
            specs.extend(topics.specs(config.topics.partitions));
            sources.insert(Arc::<str>::from(topics.changes), source.effects_of);
        }
        ensure_topics(&kafka, &specs)
            .await
            .context("checking the topics")?;

        let ledger = Ledger::connect_lazy(&config.database_url).context("--database-url")?;
        let mut consumer_config = kafka.self_positioned_consumer_config(&config.group_id());
        let consumer: StreamConsumer = consumer_config
            .set("auto.offset.reset", "earliest")
            // Static membership: a restarted instance takes its partitions
            // back at once instead of waiting out the session.
            .set("group.instance.id", &config.instance_id)
            .set("session.timeout.ms", "10000")
            .create()
            .context("creating the consumer")?;
        let subscribed: Vec<&str> = sources.keys().map(|topic| &**topic).collect();
        consumer
            .subscribe(&subscribed)
            .context("subscribing to the changes topics")?;
        let topics = subscribed.iter().map(|t| (*t).to_owned()).collect();
        let consumer = Arc::new(consumer);
        let dlq = tokio::task::spawn_blocking({
            let (kafka, id) = (kafka.clone(), format!("{}-dlq", config.instance_id));
            move || Appender::start(&kafka, &id, AppenderSettings::default())
        })
        .await?
        .context("registering the dead-letter producer (--instance-id)")?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding {} (--http-addr)", config.http_addr))?;
        let metrics = Arc::new(Metrics::default());
        let (stop, stopping) = watch::channel(false);
        let worker = Worker {
            consumer: consumer.clone(),
            sources,
            deliverer,
            ledger,
            dlq,
            dlq_topic,
            policy: config.policy(),
            metrics: metrics.clone(),
            stopping,
        };
        Ok(Self {
            listener,
            worker,
            stop,
            state: HttpState {
                metrics,
                consumer,
                topics,
            },
        })
    }

    /// Where health and metrics are served.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs until `shutdown`; the batch in progress is finished first.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            worker,
            stop,
            state,
        } = self;
        let ledger = worker.ledger.clone();
        let mut stopped = stop.subscribe();
        let work = tokio::spawn(async move {
            let prepared =
                service_kit::retry::until_ok("preparing the effects table", &mut stopped, || {
                    ledger.prepare()
                })
                .await;
            if prepared.is_none() {
                return Ok(());
            }
            worker.run(stopped).await
        });
        let router = Router::new()
            .route(
                "/healthz",
                get(|| async { Json(json!({ "status": "ok" })) }),
            )
            .route("/metrics", get(metrics))
            .fallback(service_kit::problem::not_found)
            .with_state(state);
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        stop.send_replace(true);
        work.await?.context("the notifier failed")
    }
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let m = &state.metrics;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let lag = {
        let (consumer, topics) = (state.consumer.clone(), state.topics.clone());
        tokio::task::spawn_blocking(move || {
            topics
                .iter()
                .flat_map(|topic| lag(&consumer, topic))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default()
    };
    let body = MetricsText::new()
        .counter(
            "notifier_effects_sent_total",
            "Effects delivered.",
            get(&m.sent),
        )
        .counter(
            "notifier_attempts_retried_total",
            "Attempts that failed and were retried.",
            get(&m.retried),
        )
        .counter(
            "notifier_effects_failed_total",
            "Effects given up.",
            get(&m.failed),
        )
        .counter(
            "notifier_dead_lettered_total",
            "Records written to the notifier's dead-letter topic.",
            get(&m.dead_lettered),
        )
        .counter(
            "notifier_effects_skipped_total",
            "Effects already settled (replays).",
            get(&m.skipped),
        )
        .gauge(
            "notifier_lag",
            "Records of the changes topics not yet settled, per topic and partition.",
            &lag,
        )
        .finish();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Per assigned partition: end offset minus committed offset.
fn lag(consumer: &StreamConsumer, topic: &str) -> Vec<(String, f64)> {
    let Ok(assignment) = consumer.assignment() else {
        return Vec::new();
    };
    let committed = consumer
        .committed_offsets(assignment.clone(), Duration::from_secs(2))
        .unwrap_or(assignment);
    committed
        .elements_for_topic(topic)
        .iter()
        .filter_map(|e| {
            let (_, high) = consumer
                .fetch_watermarks(topic, e.partition(), Duration::from_secs(2))
                .ok()?;
            let at = e.offset().to_raw().filter(|o| *o >= 0).unwrap_or(0);
            Some((
                format!("topic=\"{topic}\",partition=\"{}\"", e.partition()),
                (high - at).max(0) as f64,
            ))
        })
        .collect()
}
