//! `projector rebuild-read-model`: a new copy of the read model from the log,
//! swapped in while the live one keeps serving.

use std::io::IsTerminal;

use anyhow::Context;
use read_model::orders::OrdersProjection;
use read_model::rebuild::rebuild;

use crate::Config;
use crate::read_model::pipeline_config;

/// Runs the rebuild to the swap; prints what it did.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let mut pipeline = pipeline_config(config);
    // The replay must not share a consumer group name with the live pipeline.
    pipeline.group_id = format!("{}-rebuild", pipeline.group_id);
    let rebuilt = rebuild(
        &config.database_url,
        pipeline,
        OrdersProjection,
        std::io::stderr().is_terminal(),
    )
    .await
    .context("rebuilding the read model (the live model is unchanged)")?;
    let seconds = rebuilt.took.as_secs_f64();
    println!(
        "read model rebuilt and swapped in: {} records, {} events in {seconds:.1} s ({:.0} records/s)",
        rebuilt.records,
        rebuilt.events,
        rebuilt.records as f64 / seconds.max(0.001),
    );
    Ok(())
}
