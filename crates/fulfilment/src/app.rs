//! Start-up (settings, Kafka, the consumer), the HTTP port, and graceful
//! shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::consumer::{self, ChangesConsumer};
use crate::http::{self, HttpState};
use crate::steps::OrderService;
use crate::{Config, Metrics};

/// A started workflow.
pub struct Application {
    listener: TcpListener,
    consumer: Arc<ChangesConsumer>,
    topic: String,
    service: OrderService,
    concurrency: usize,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
}

impl Application {
    /// Checks the settings, connects, subscribes, binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let (stop, stopping) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let service = OrderService::new(&config.order_service_url, stopping, metrics.clone())
            .context("--order-service-url")?;
        let kafka = config
            .topics
            .connect(&config.instance_id)
            .await
            .context("connecting to Kafka")?;
        let (consumer, topic) = consumer::subscribe(&kafka, &config)?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding {} (--http-addr)", config.http_addr))?;
        Ok(Self {
            listener,
            consumer: Arc::new(consumer),
            topic,
            service,
            concurrency: usize::try_from(config.concurrency).unwrap_or(32),
            metrics,
            stop,
        })
    }

    /// Where health and metrics are served.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs until `shutdown` (the batch in hand is finished or left
    /// uncommitted, to be acted on again with the same keys), or until the
    /// workflow fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = HttpState {
            metrics: self.metrics,
            consumer: self.consumer.clone(),
            topic: self.topic.clone(),
        };
        let mut work = tokio::spawn({
            let (consumer, service) = (self.consumer, self.service);
            let (concurrency, stopping) = (self.concurrency, self.stop.subscribe());
            async move { consumer::run(&consumer, service, concurrency, stopping).await }
        });
        let serving = axum::serve(self.listener, http::router(state))
            .with_graceful_shutdown(shutdown)
            .into_future();
        tokio::select! {
            served = serving => {
                served.context("serving HTTP")?;
                self.stop.send_replace(true);
                work.await?.context("the fulfilment workflow failed")
            }
            ended = &mut work => ended?.context("the fulfilment workflow stopped"),
        }
    }
}
