use anyhow::Context;
use clap::Parser;
use projector::config::Command;
use projector::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = service_kit::telemetry::init("projector")?;
    let config = Config::parse();
    if let Some(Command::RebuildReadModel { entity }) = &config.command {
        return projector::rebuild::run(&config, entity).await;
    }
    let app = Application::build(config)
        .await
        .context("starting the projector")?;
    app.run_until_stopped(service_kit::shutdown::signal()).await
}
