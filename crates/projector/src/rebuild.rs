//! `projector rebuild-read-model`: a new copy of one entity's read model from
//! its log, swapped in while the live one keeps serving.

use std::io::IsTerminal;

use anyhow::Context;
use event_store::KafkaConfig;
use read_model::pipeline::Projection;
use read_model::rebuild::rebuild;

use crate::Config;
use crate::entity::{self, EachEntity};
use crate::read_model::pipeline_config;

/// Runs the rebuild of `--entity`'s model to the swap; prints what it did.
pub async fn run(config: &Config, entity: &str) -> anyhow::Result<()> {
    let kafka = config
        .topics
        .connect(&config.instance_id)
        .await
        .context("connecting to Kafka")?;
    let mut rebuild = Rebuild {
        config,
        kafka,
        entity,
        done: false,
        hosted: Vec::new(),
    };
    entity::for_each(&mut rebuild).await?;
    if !rebuild.done {
        anyhow::bail!(
            "--entity: no entity `{entity}` (this projector hosts {})",
            rebuild.hosted.join(", ")
        );
    }
    Ok(())
}

/// Rebuilds the model of the entity it is looking for.
struct Rebuild<'a> {
    config: &'a Config,
    kafka: KafkaConfig,
    entity: &'a str,
    done: bool,
    hosted: Vec<&'static str>,
}

impl EachEntity for Rebuild<'_> {
    async fn entity<P: Projection + Clone>(
        &mut self,
        name: &'static str,
        projection: P,
    ) -> anyhow::Result<()> {
        self.hosted.push(name);
        if name != self.entity {
            return Ok(());
        }
        let mut pipeline = pipeline_config(self.config, &self.kafka, name);
        // The replay must not share a consumer group name with the live pipeline.
        pipeline.group_id = format!("{}-rebuild", pipeline.group_id);
        let rebuilt = rebuild(
            &self.config.database_url,
            pipeline,
            projection,
            std::io::stderr().is_terminal(),
        )
        .await
        .with_context(|| {
            format!("rebuilding the {name} read model (the live model is unchanged)")
        })?;
        let seconds = rebuilt.took.as_secs_f64();
        println!(
            "{name} read model rebuilt and swapped in: {} records, {} events in {seconds:.1} s ({:.0} records/s)",
            rebuilt.records,
            rebuilt.events,
            rebuilt.records as f64 / seconds.max(0.001),
        );
        self.done = true;
        Ok(())
    }
}
