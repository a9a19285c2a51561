use anyhow::Context;
use clap::Parser;
use fulfilment::Config;
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = service_kit::telemetry::init("fulfilment")?;
    let config = Config::parse();
    let (stop, stopping) = watch::channel(false);
    let mut run = tokio::spawn(fulfilment::consumer::run(config, stopping));
    tokio::select! {
        () = service_kit::shutdown::signal() => {
            stop.send_replace(true);
            run.await?
        }
        ended = &mut run => ended?.context("the fulfilment workflow stopped"),
    }
}
