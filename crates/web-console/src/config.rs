//! Flags, each with an environment fallback and a localhost default.

use std::net::SocketAddr;

use clap::Parser;

/// The console's settings.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "web-console",
    about = "The web console of the order system: live feed, orders, inventory, operations."
)]
pub struct Config {
    /// Brokers and topics (the live feed reads the changes topics).
    #[command(flatten)]
    pub topics: service_kit::topics::TopicArgs,
    /// Where the console is served.
    #[arg(long, env = "CONSOLE_HTTP_ADDR", default_value = "127.0.0.1:8083")]
    pub http_addr: SocketAddr,
    /// order-service: every read and every command goes through its API.
    #[arg(
        long,
        env = "ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub order_service_url: String,
    /// The projector: partitions, their owners and lag.
    #[arg(long, env = "PROJECTOR_URL", default_value = "http://127.0.0.1:8081")]
    pub projector_url: String,
    /// The notifier: effects and their delivery.
    #[arg(long, env = "NOTIFIER_URL", default_value = "http://127.0.0.1:8082")]
    pub notifier_url: String,
    /// The fulfilment workflow: its commands and lag.
    #[arg(long, env = "FULFILMENT_URL", default_value = "http://127.0.0.1:8084")]
    pub fulfilment_url: String,
    /// This instance's name (its client id on the brokers).
    #[arg(long, env = "CONSOLE_INSTANCE_ID", default_value = "console-0")]
    pub instance_id: String,
}
