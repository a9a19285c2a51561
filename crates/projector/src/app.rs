//! Start-up and shutdown: every hosted entity type started (topics checked,
//! its processor on a thread of its own), the HTTP API on the runtime.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use event_store::KafkaConfig;
use read_model::pipeline::Projection;
use tokio::net::TcpListener;

use crate::Config;
use crate::entity::{self, EachEntity, Hosted};
use crate::http::{self, AppState};

/// A started projector.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    hosted: Vec<Hosted>,
    stop: Arc<AtomicBool>,
}

impl Application {
    /// Checks the topics, binds the HTTP port and starts every entity's processor.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if config.instance_id.contains('@') {
            anyhow::bail!(
                "--instance-id (PROJECTOR_INSTANCE_ID) must not contain `@`: it separates the id from the address in the group"
            );
        }
        config.advertised_addr()?;
        let listener = TcpListener::bind(config.http_addr).await.with_context(|| {
            format!(
                "binding the HTTP address {} (--http-addr)",
                config.http_addr
            )
        })?;
        let kafka = config
            .topics
            .connect(&config.instance_id)
            .await
            .context("connecting to Kafka")?;
        let mut start = Start {
            config: &config,
            kafka,
            stop: Arc::new(AtomicBool::new(false)),
            hosted: Vec::new(),
        };
        if let Err(error) = entity::for_each(&mut start).await {
            // Those started already stop before the error is reported.
            start.stop.store(true, Ordering::Relaxed);
            for hosted in start.hosted {
                let _ = hosted.join().await;
            }
            return Err(error);
        }
        let state = AppState::new(
            start.hosted.iter().map(|h| h.entity.clone()).collect(),
            config.instance_id.clone(),
        );
        Ok(Self {
            listener,
            state,
            hosted: start.hosted,
            stop: start.stop,
        })
    }

    /// Where the HTTP API listens (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes or a processor fails; then stops
    /// the processors, each committing what it folded.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            mut hosted,
            stop,
        } = self;
        let any_done = state.clone();
        let server =
            axum::serve(listener, http::router(state)).with_graceful_shutdown(async move {
                tokio::select! {
                    () = shutdown => {}
                    name = any_done.wait_any_processor_done() => {
                        tracing::error!(entity = name, "a processor stopped; shutting down");
                    }
                }
            });
        let served = server.await.context("serving HTTP");
        let mut result = served;
        for hosted in &mut hosted {
            result = result.and(hosted.stop_read_model().await);
        }
        stop.store(true, Ordering::Relaxed);
        for hosted in hosted {
            result = result.and(hosted.join().await);
        }
        result
    }
}

/// Starts each entity type in turn.
struct Start<'a> {
    config: &'a Config,
    kafka: KafkaConfig,
    stop: Arc<AtomicBool>,
    hosted: Vec<Hosted>,
}

impl EachEntity for Start<'_> {
    async fn entity<P: Projection + Clone>(
        &mut self,
        name: &'static str,
        projection: P,
    ) -> anyhow::Result<()> {
        let hosted = Hosted::start(
            self.config,
            &self.kafka,
            name,
            projection,
            self.stop.clone(),
        )
        .await?;
        self.hosted.push(hosted);
        Ok(())
    }
}
