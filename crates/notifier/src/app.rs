//! Start-up (settings checked, topics, consumer, lanes), the HTTP port, and
//! graceful shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use event_store::store::QuietEof;
use event_store::{Appender, AppenderSettings, StreamTopics, TopicSpec};
use rdkafka::consumer::Consumer;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::dead_letters::DeadLetters;
use crate::delivery::{Deliverer, WebhookTarget};
use crate::http::{self, HttpState};
use crate::ingest::{ChangesConsumer, Ingest};
use crate::lanes::Lane;
use crate::ledger::{Ledger, SMTP};
use crate::signature::Secret;
use crate::{Config, Metrics, effects};

/// A started notifier.
pub struct Application {
    listener: TcpListener,
    ingest: Ingest,
    lanes: Vec<Lane>,
    stop: watch::Sender<bool>,
    state: HttpState,
}

impl Application {
    /// Checks the settings and topics, connects, binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let webhooks = webhook_targets(&config)?;
        let webhook_urls: Vec<String> = webhooks.iter().map(|t| t.url.clone()).collect();
        let deliverer = Deliverer::new(
            &config.smtp_host,
            config.smtp_port,
            &config.mail_from,
            webhooks,
            Duration::from_millis(config.attempt_timeout_ms),
        )
        .map_err(anyhow::Error::msg)?;
        let kafka = config
            .topics
            .connect(&config.instance_id)
            .await
            .context("connecting to Kafka")?;
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
        config
            .topics
            .ensure(&kafka, specs)
            .await
            .context("checking the topics")?;

        let ledger = Ledger::connect_lazy(&config.database_url).context("--database-url")?;
        let mut consumer_config = kafka.self_positioned_consumer_config(&config.group_id());
        let consumer: ChangesConsumer = consumer_config
            .set("auto.offset.reset", "earliest")
            // The end of a partition is reported, so the position past its
            // last transaction marker is committed (`ingest`).
            .set("enable.partition.eof", "true")
            // A dynamic member, not a static one: librdkafka fences a static member
            // whose session expired during a coordinator failover by its own new
            // join, fatally (librdkafka#3437); a dynamic one just joins again. A
            // restart costs a rebalance, and nothing is lost: offsets are
            // committed after the work.
            .create_with_context(QuietEof)
            .context("creating the consumer")?;
        let subscribed: Vec<&str> = sources.keys().map(|topic| &**topic).collect();
        consumer
            .subscribe(&subscribed)
            .context("subscribing to the changes topics")?;
        let topics = subscribed.iter().map(|t| (*t).to_owned()).collect();
        let consumer = Arc::new(consumer);
        let appender = tokio::task::spawn_blocking({
            let (kafka, id) = (kafka.clone(), format!("{}-dlq", config.instance_id));
            move || Appender::start(&kafka, &id, AppenderSettings::default())
        })
        .await?
        .context("registering the dead-letter producer (--instance-id)")?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding {} (--http-addr)", config.http_addr))?;
        let metrics = Arc::new(Metrics::default());
        appender
            .metrics()
            .register(&metrics.registry)
            .context("registering the dead-letter producer's metrics")?;
        let dead_letters = DeadLetters {
            appender,
            topic: dlq_topic,
            metrics: metrics.clone(),
        };
        let recorded = Arc::new(Notify::new());
        let lanes = std::iter::once(SMTP.to_owned())
            .chain(webhook_urls.iter().cloned())
            .map(|destination| Lane {
                destination,
                ledger: ledger.clone(),
                deliverer: deliverer.clone(),
                dead_letters: dead_letters.clone(),
                policy: config.policy(),
                metrics: metrics.clone(),
                recorded: recorded.clone(),
            })
            .collect();
        let ingest = Ingest {
            consumer: consumer.clone(),
            sources,
            webhook_urls: webhook_urls.clone(),
            ledger: ledger.clone(),
            dead_letters,
            metrics: metrics.clone(),
            recorded,
        };
        let (stop, _) = watch::channel(false);
        Ok(Self {
            listener,
            ingest,
            lanes,
            stop,
            state: HttpState {
                metrics,
                consumer,
                topics,
                ledger,
                webhook_urls,
            },
        })
    }

    /// Where health, metrics and the operators' API are served.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs until `shutdown`: the batch being recorded is finished or left
    /// uncommitted, attempts in flight are left to their leases.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            ingest,
            lanes,
            stop,
            state,
        } = self;
        let ledger = state.ledger.clone();
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
            let lanes: Vec<_> = lanes
                .into_iter()
                .map(|lane| tokio::spawn(lane.run(stopped.clone())))
                .collect();
            let ingested = ingest.run(stopped).await;
            for lane in lanes {
                let _ = lane.await;
            }
            ingested
        });
        axum::serve(listener, http::router(state))
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        stop.send_replace(true);
        work.await?.context("the notifier failed")
    }
}

/// The webhook endpoints from `--webhook-url` (one or more, comma-separated)
/// and `--webhook-secret`, which signs for all of them.
fn webhook_targets(config: &Config) -> anyhow::Result<Vec<WebhookTarget>> {
    match (config.webhook_url.is_empty(), &config.webhook_secret) {
        (false, Some(secret)) => {
            let secret = Secret::parse(secret).context("--webhook-secret")?;
            let mut targets: Vec<WebhookTarget> = Vec::new();
            for url in &config.webhook_url {
                let parsed = reqwest::Url::parse(url)
                    .with_context(|| format!("--webhook-url `{url}` is not a URL"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    anyhow::bail!("--webhook-url `{url}` must be http or https");
                }
                if targets.iter().any(|t| t.url == *url) {
                    anyhow::bail!("--webhook-url `{url}` is given twice");
                }
                targets.push(WebhookTarget {
                    url: url.clone(),
                    secret: secret.clone(),
                });
            }
            Ok(targets)
        }
        (true, None) => Ok(Vec::new()),
        (false, None) => anyhow::bail!("--webhook-url needs --webhook-secret (whsec_...)"),
        (true, Some(_)) => anyhow::bail!("--webhook-secret is set but --webhook-url is not"),
    }
}
