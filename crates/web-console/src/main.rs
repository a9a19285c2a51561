use anyhow::Context;
use clap::Parser;
use web_console::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = service_kit::telemetry::init("web-console")?;
    let config = Config::parse();
    let app = Application::build(config)
        .await
        .context("starting the console")?;
    tracing::info!(addr = %app.local_addr()?, "console serving");
    app.run_until_stopped(service_kit::shutdown::signal()).await
}
