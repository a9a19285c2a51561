//! An entity's read model pipeline as the projector runs it: its own task,
//! its own consumer, PostgreSQL's pace. It never holds back the state store:
//! while PostgreSQL is away it retries with backoff and the processor goes on.

use std::sync::Arc;
use std::time::Duration;

use event_store::KafkaConfig;
use read_model::pipeline::{Limit, PipelineError, Projection};
use read_model::{Pipeline, PipelineConfig, PipelineMetrics, schema};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Config;

/// Records in one SQL transaction at most.
const MAX_BATCH: usize = 5_000;
/// How long a batch waits for more records once it has one.
const LINGER: Duration = Duration::from_millis(5);

/// How entity `name`'s read model pipeline is set up, from the projector's flags.
pub fn pipeline_config(config: &Config, kafka: &KafkaConfig, name: &str) -> PipelineConfig {
    PipelineConfig {
        kafka: kafka.with_client_id(format!("{}-{name}-read-model", config.instance_id)),
        topic: event_store::StreamTopics::new(&config.topics.entity_prefix(name)).events,
        partitions: config.topics.partitions,
        lanes: lanes(config),
        group_id: format!("{}-read-model", config.group_id(name)),
        max_batch: MAX_BATCH,
        linger: LINGER,
    }
}

/// How many lanes each read model asks for: as configured, or one per core.
fn lanes(config: &Config) -> usize {
    config.read_model_lanes.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    })
}

/// The running pipeline.
pub struct ReadModel {
    /// Its counters.
    pub metrics: Arc<PipelineMetrics>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), PipelineError>>,
}

impl ReadModel {
    /// Starts folding into the live schema; the schema is created or migrated
    /// once PostgreSQL answers.
    pub fn start<P: Projection>(
        config: &Config,
        kafka: &KafkaConfig,
        name: &str,
        projection: P,
    ) -> anyhow::Result<Self> {
        let model = P::MODEL;
        let pipeline_config = pipeline_config(config, kafka, name);
        // A connection per lane: each holds one through its batch's transaction.
        let connections = pipeline_config.lane_count() as u32;
        let pool = schema::connect_lazy(&config.database_url, model.live, connections)
            .map_err(|e| anyhow::anyhow!("--database-url: {e}"))?;
        let metrics = Arc::new(PipelineMetrics::new(name));
        let (stop, mut stopped) = watch::channel(false);
        let pipeline = Pipeline::new(pipeline_config, projection, pool.clone(), metrics.clone());
        let task = tokio::spawn(async move {
            let prepared =
                service_kit::retry::until_ok("preparing the read model", &mut stopped, || {
                    schema::prepare(&pool, &model, model.live)
                })
                .await;
            if prepared.is_none() {
                return Ok(());
            }
            pipeline.run(Limit::Forever, stopped).await
        });
        Ok(Self {
            metrics,
            stop,
            task,
        })
    }

    /// Stops after the batch in progress; a batch cut short is rolled back,
    /// and the next start resumes from the stored offsets.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        self.task.await??;
        Ok(())
    }
}
