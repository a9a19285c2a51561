//! Start-up and shutdown: topics checked, the processor on its own thread,
//! the HTTP API on the runtime.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use domain::order::OrderAggregate;
use event_store::processor::{self, ProcessorConfig};
use event_store::store::standby::{self, StandbyConfig, StandbyError};
use event_store::store::{Registry, StoreOptions};
use event_store::{KafkaConfig, StreamTopics, ensure_topics};
use tokio::net::TcpListener;

use crate::Config;
use crate::http::{self, AppState};
use crate::read_model::ReadModel;
use crate::routing::{Directory, DirectoryConfig};

/// A started projector.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    processor: JoinHandle<Result<(), processor::ProcessorError>>,
    standby: Option<JoinHandle<Result<(), StandbyError>>>,
    stop: Arc<AtomicBool>,
    read_model: Option<ReadModel>,
}

impl Application {
    /// Checks the topics, binds the HTTP port and starts the processor.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let kafka = KafkaConfig::new(&config.topics.kafka_bootstrap_servers, &config.instance_id);
        let topics = StreamTopics::new(&config.topics.topic_prefix);
        ensure_topics(&kafka, &topics.specs(config.topics.partitions))
            .await
            .context("checking the topics")?;
        let listener = TcpListener::bind(config.http_addr).await.with_context(|| {
            format!(
                "binding the HTTP address {} (--http-addr)",
                config.http_addr
            )
        })?;

        if config.instance_id.contains('@') {
            anyhow::bail!(
                "--instance-id (PROJECTOR_INSTANCE_ID) must not contain `@`: it separates the id from the address in the group"
            );
        }
        let advertised_addr = config.advertised_addr()?;

        let registry = Arc::new(Registry::new());
        registry.set_partition_count(config.topics.partitions);
        let stop = Arc::new(AtomicBool::new(false));
        let store_options = StoreOptions::new(config.cache_mib << 20);
        let processor_config = ProcessorConfig {
            kafka: kafka.clone(),
            topics: topics.clone(),
            group_id: config.group_id(),
            instance_id: config.instance_id.clone(),
            advertised_addr,
            session_timeout: config.session_timeout(),
            state_dir: config.state_dir(),
            commit_interval: config.commit_interval(),
            store_options: store_options.clone(),
            crash_after_commits: config.crash_after_commits,
        };
        let directory = Directory::spawn(
            DirectoryConfig {
                kafka: kafka.clone(),
                group_id: config.group_id(),
                topics: topics.clone(),
                instance_id: config.instance_id.clone(),
                standby_replicas: config.standby_replicas,
            },
            registry.clone(),
        )
        .context("starting the group directory")?;
        let standby = (config.standby_replicas > 0)
            .then(|| {
                let standby_config = StandbyConfig {
                    kafka,
                    changelog: topics.changelog.clone(),
                    events: topics.events.clone(),
                    state_dir: config.state_dir(),
                    store_options,
                };
                let (registry, stop) = (registry.clone(), stop.clone());
                std::thread::Builder::new()
                    .name("standby".into())
                    .spawn(move || standby::run(standby_config, registry, stop))
            })
            .transpose()
            .context("starting the standby thread")?;
        let read_model = if config.read_model {
            Some(ReadModel::start(&config).context("starting the read model pipeline")?)
        } else {
            None
        };
        let mut state = AppState::new(
            registry.clone(),
            topics.clone(),
            config.instance_id.clone(),
            directory,
        );
        state.read_model = read_model.as_ref().map(|r| r.metrics.clone());
        let processor = std::thread::Builder::new()
            .name("processor".into())
            .spawn({
                let (stop, done) = (stop.clone(), state.processor_done.clone());
                move || {
                    let result = processor::run::<OrderAggregate>(processor_config, registry, stop);
                    // Tells the HTTP side (no thread is parked joining this one).
                    done.send_replace(true);
                    result
                }
            })
            .context("starting the processor thread")?;
        Ok(Self {
            listener,
            state,
            processor,
            standby,
            stop,
            read_model,
        })
    }

    /// Where the HTTP API listens (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes or the processor fails; then stops
    /// the processor, which commits what it folded.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            processor,
            standby,
            stop,
            read_model,
        } = self;
        let processor_done = state.processor_done.clone();
        let server = axum::serve(listener, http::router(state.clone())).with_graceful_shutdown(async move {
            tokio::select! {
                () = shutdown => {}
                () = state.wait_processor_done() => tracing::error!("the processor stopped; shutting down"),
            }
        });
        server.await.context("serving HTTP")?;
        if let Some(read_model) = read_model {
            read_model
                .stop()
                .await
                .context("the read model pipeline failed")?;
        }
        stop.store(true, Ordering::Relaxed);
        state_done(&processor_done).await;
        if let Some(standby) = standby {
            // It notices the stop within one poll (100 ms).
            match tokio::task::spawn_blocking(move || standby.join()).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::error!(%error, "the standby copies failed"),
                _ => tracing::error!("the standby thread panicked"),
            }
        }
        match processor.join() {
            Ok(result) => result.context("the processor failed"),
            Err(_) => anyhow::bail!("the processor thread panicked"),
        }
    }
}

/// Waits until the processor thread has returned.
async fn state_done(done: &tokio::sync::watch::Sender<bool>) {
    let _ = done.subscribe().wait_for(|done| *done).await;
}
