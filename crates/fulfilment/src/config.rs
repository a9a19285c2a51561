//! Flags, each with an environment fallback and a localhost default.

use std::net::SocketAddr;

use clap::Parser;

/// The fulfilment process's settings.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "fulfilment",
    about = "Reserves stock for confirmed orders, releases it when they are cancelled, commits it when they ship."
)]
pub struct Config {
    /// Brokers and topics.
    #[command(flatten)]
    pub topics: service_kit::topics::TopicArgs,
    /// The consumer group of the fulfilment instances (default
    /// `<topic prefix>-fulfilment`).
    #[arg(long, env = "FULFILMENT_GROUP_ID")]
    pub group_id: Option<String>,
    /// This instance's name (its client id on the brokers).
    #[arg(long, env = "FULFILMENT_INSTANCE_ID", default_value = "fulfilment-0")]
    pub instance_id: String,
    /// order-service, whose API carries every command out.
    #[arg(
        long,
        env = "ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub order_service_url: String,
    /// Orders worked on at once (each order's facts stay in order).
    #[arg(long, env = "FULFILMENT_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Health and metrics.
    #[arg(long, env = "FULFILMENT_HTTP_ADDR", default_value = "127.0.0.1:8084")]
    pub http_addr: SocketAddr,
}

impl Config {
    /// The consumer group: `--group-id`, or one named after the topics.
    pub fn group_id(&self) -> String {
        self.topics.group_id(self.group_id.as_deref(), "fulfilment")
    }
}
