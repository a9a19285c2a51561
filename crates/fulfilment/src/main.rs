use anyhow::Context;
use clap::Parser;
use fulfilment::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = service_kit::telemetry::init("fulfilment")?;
    let config = Config::parse();
    let app = Application::build(config)
        .await
        .context("starting the fulfilment workflow")?;
    app.run_until_stopped(service_kit::shutdown::signal()).await
}
