use anyhow::Context;
use clap::Parser;
use order_service::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = service_kit::telemetry::init("order-service")?;
    let config = Config::parse();
    let app = Application::build(config)
        .await
        .context("starting order-service")?;
    app.run_until_stopped(service_kit::shutdown::signal()).await
}
