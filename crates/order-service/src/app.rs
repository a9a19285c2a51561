//! Start-up and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::aggregate::Aggregate;
use event_store::probe::KafkaProbe;
use event_store::{Appender, AppenderSettings, StreamTopics};
use tokio::net::TcpListener;

use crate::Config;
use crate::execute::Executor;
use crate::idempotency::IdempotencyCache;
use crate::projector::ProjectorClient;
use crate::routes::{self, ApiMetrics, AppState};
use crate::snapshots::Snapshots;

/// A started order-service.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Checks the topics, registers the transactional id, binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let projector = ProjectorClient::new(&config.projector_url)
            .context("--projector-url (PROJECTOR_URL) names no projector")?;
        let kafka = config
            .topics
            .connect(&config.instance_id)
            .await
            .context("connecting to Kafka")?;
        let topics = |entity: &str| StreamTopics::new(&config.topics.entity_prefix(entity));
        let (orders, inventory) = (topics("orders"), topics("inventory"));
        for (entity, topics) in [("orders", &orders), ("inventory", &inventory)] {
            config
                .topics
                .ensure_stream(&kafka, topics)
                .await
                .with_context(|| format!("checking the {entity} topics"))?;
        }
        let settings = AppenderSettings {
            linger: Duration::from_micros(config.linger_us),
            ..AppenderSettings::default()
        };
        let appender = tokio::task::spawn_blocking({
            let (kafka, id) = (kafka.clone(), config.instance_id.clone());
            move || Appender::start(&kafka, &id, settings)
        })
        .await?
        .context("registering the transactional producer (--instance-id)")?;
        let listener = TcpListener::bind(config.http_addr).await.with_context(|| {
            format!(
                "binding the HTTP address {} (--http-addr)",
                config.http_addr
            )
        })?;
        let write_path = WritePath {
            config: &config,
            appender,
            projector,
        };
        let model = |model: read_model::Model| {
            read_model::schema::connect_lazy(&config.database_url, model.live, 8)
                .context("--database-url")
        };
        let state = AppState {
            orders: write_path.executor("orders", &orders),
            inventory: write_path.executor("inventory", &inventory),
            idempotency: IdempotencyCache::default(),
            kafka: KafkaProbe::new(&kafka).context("creating the Kafka probe")?,
            read_model: model(read_model::ORDERS)?,
            inventory_model: model(read_model::INVENTORY)?,
            metrics: Arc::new(ApiMetrics::new(write_path.appender.metrics())),
        };
        Ok(Self { listener, state })
    }

    /// Where the HTTP API listens (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`; in-flight requests finish first.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(self.listener, routes::router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")
    }
}

/// What every entity type's write path shares: one producer appends for all
/// of them (a command's events go to its own entity's topic), one client
/// asks the projector.
struct WritePath<'a> {
    config: &'a Config,
    appender: Appender,
    projector: ProjectorClient,
}

impl WritePath<'_> {
    /// The executor of the entity served at `/<resource>`.
    fn executor<A: Aggregate>(&self, resource: &'static str, topics: &StreamTopics) -> Executor<A> {
        Executor {
            appender: self.appender.clone(),
            projector: self.projector.clone(),
            resource,
            events_topic: topics.events.clone(),
            partitions: self.config.topics.partitions,
            verdict_timeout: self.config.verdict_timeout(),
            append_timeout: self.config.append_timeout(),
            conflict_retries: self.config.conflict_retries,
            snapshots: Arc::new(Snapshots::new(self.config.snapshot_cache)),
            lanes: Arc::default(),
        }
    }
}
