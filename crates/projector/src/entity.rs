//! One entity type the projector hosts, and the list of them.
//!
//! Every entity type has its own topics, consumer group, partition stores,
//! processor thread, standby copies, read model and group directory, so one
//! entity's rebalance, restore or poison record never holds up another's.
//! They share the process, its HTTP port and its block cache.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

use anyhow::Context;
use event_store::processor::{self, ProcessorConfig, ProcessorError};
use event_store::store::standby::{self, StandbyConfig, StandbyError};
use event_store::store::{Registry, StoreOptions};
use event_store::{KafkaConfig, StreamTopics};
use read_model::PipelineMetrics;
use read_model::inventory::InventoryProjection;
use read_model::orders::OrdersProjection;
use read_model::pipeline::Projection;
use tokio::sync::watch;

use crate::Config;
use crate::read_model::ReadModel;
use crate::routing::{Directory, DirectoryConfig};

/// Something done once per hosted entity type.
pub(crate) trait EachEntity {
    /// Called with the entity's name (its resource path and topic prefix)
    /// and its read model projection, whose aggregate the processor folds.
    async fn entity<P: Projection + Clone>(
        &mut self,
        name: &'static str,
        projection: P,
    ) -> anyhow::Result<()>;
}

/// The entity types this projector hosts, one line each; the first is the
/// default of `/partitions` and `rebuild-read-model`.
pub(crate) async fn for_each(each: &mut impl EachEntity) -> anyhow::Result<()> {
    each.entity("orders", OrdersProjection).await?;
    each.entity("inventory", InventoryProjection).await
}

/// What the HTTP side knows of one hosted entity type.
pub struct Entity {
    /// The path its state is served under (`/orders/{id}`).
    pub name: &'static str,
    /// Its topics.
    pub topics: StreamTopics,
    /// Its partitions owned here and the standby copies kept here.
    pub registry: Arc<Registry>,
    /// Who owns each of its partitions.
    pub directory: Arc<Directory>,
    /// Its read model pipeline's counters, when it runs.
    pub read_model: Option<Arc<PipelineMetrics>>,
    /// Set once its processor thread has returned.
    pub processor_done: watch::Sender<bool>,
}

impl Entity {
    /// Completes once the processor thread has ended.
    pub async fn wait_processor_done(&self) {
        let _ = self.processor_done.subscribe().wait_for(|done| *done).await;
    }
}

/// One entity type running: its threads and tasks.
pub struct Hosted {
    /// What the HTTP side sees.
    pub entity: Arc<Entity>,
    processor: JoinHandle<Result<(), ProcessorError>>,
    standby: Option<JoinHandle<Result<(), StandbyError>>>,
    read_model: Option<ReadModel>,
}

impl Hosted {
    /// Checks the entity's topics and starts its processor, directory,
    /// standby copies and read model.
    pub async fn start<P: Projection + Clone>(
        config: &Config,
        kafka: &KafkaConfig,
        name: &'static str,
        projection: P,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let kafka = kafka.clone();
        let topics = StreamTopics::new(&config.topics.entity_prefix(name));
        config
            .topics
            .ensure_stream(&kafka, &topics)
            .await
            .with_context(|| format!("checking the {name} topics"))?;
        let group_id = config.group_id(name);
        let registry = Arc::new(Registry::new());
        registry.set_partition_count(config.topics.partitions);
        let store_options = StoreOptions::new(config.cache_mib << 20);
        let directory = Directory::spawn(
            DirectoryConfig {
                kafka: kafka.clone(),
                group_id: group_id.clone(),
                topics: topics.clone(),
                instance_id: config.instance_id.clone(),
                standby_replicas: config.standby_replicas,
            },
            registry.clone(),
        )
        .with_context(|| format!("starting the {name} group directory"))?;
        let standby = (config.standby_replicas > 0)
            .then(|| {
                let standby_config = StandbyConfig {
                    kafka: kafka.clone(),
                    changelog: topics.changelog.clone(),
                    events: topics.events.clone(),
                    state_dir: config.state_dir(),
                    store_options: store_options.clone(),
                };
                let (registry, stop) = (registry.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("{name}-standby"))
                    .spawn(move || standby::run(standby_config, registry, stop))
            })
            .transpose()
            .context("starting the standby thread")?;
        let read_model = config
            .read_model
            .then(|| ReadModel::start(config, &kafka, name, projection))
            .transpose()
            .with_context(|| format!("starting the {name} read model pipeline"))?;
        let entity = Arc::new(Entity {
            name,
            topics: topics.clone(),
            registry: registry.clone(),
            directory,
            read_model: read_model.as_ref().map(|r| r.metrics.clone()),
            processor_done: watch::Sender::new(false),
        });
        let processor_config = ProcessorConfig {
            kafka,
            topics,
            group_id,
            instance_id: config.instance_id.clone(),
            advertised_addr: config.advertised_addr()?,
            session_timeout: config.session_timeout(),
            state_dir: config.state_dir(),
            commit_interval: config.commit_interval(),
            store_options,
            crash_after_commits: config.crash_after_commits,
        };
        let processor = std::thread::Builder::new()
            .name(format!("{name}-processor"))
            .spawn({
                let entity = entity.clone();
                move || {
                    let result = processor::run::<P::Aggregate>(processor_config, registry, stop);
                    // Tells the HTTP side (no thread is parked joining this one).
                    entity.processor_done.send_replace(true);
                    result
                }
            })
            .context("starting the processor thread")?;
        Ok(Self {
            entity,
            processor,
            standby,
            read_model,
        })
    }

    /// Stops the read model after its batch in progress (the processor and
    /// standby copies stop on the shared flag, set by the caller after this).
    pub async fn stop_read_model(&mut self) -> anyhow::Result<()> {
        match self.read_model.take() {
            Some(read_model) => read_model
                .stop()
                .await
                .with_context(|| format!("the {} read model pipeline failed", self.entity.name)),
            None => Ok(()),
        }
    }

    /// Waits for the processor and standby threads once the stop flag is set.
    pub async fn join(self) -> anyhow::Result<()> {
        let name = self.entity.name;
        self.entity.wait_processor_done().await;
        if let Some(standby) = self.standby {
            // It notices the stop within one poll (100 ms).
            match tokio::task::spawn_blocking(move || standby.join()).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::error!(%error, name, "the standby copies failed"),
                _ => tracing::error!(name, "the standby thread panicked"),
            }
        }
        match self.processor.join() {
            Ok(result) => result.with_context(|| format!("the {name} processor failed")),
            Err(_) => anyhow::bail!("the {name} processor thread panicked"),
        }
    }
}
