//! Flags, each with an environment fallback and a localhost default.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// order-service's settings.
#[derive(Clone, Debug, Parser)]
#[command(name = "order-service", about = "The order system's public HTTP API.")]
pub struct Config {
    /// Brokers and topics.
    #[command(flatten)]
    pub topics: service_kit::topics::TopicArgs,
    /// This instance's stable name: its transactional id.
    #[arg(
        long,
        env = "ORDER_SERVICE_INSTANCE_ID",
        default_value = "order-service-0"
    )]
    pub instance_id: String,
    /// The projectors' state API: one or more instances, comma-separated.
    /// Any instance forwards a query to the owner of its partition; the
    /// others are tried when one does not answer.
    #[arg(
        long,
        env = "PROJECTOR_URL",
        default_value = "http://127.0.0.1:8081",
        value_delimiter = ','
    )]
    pub projector_url: Vec<String>,
    /// Where the HTTP API listens.
    #[arg(
        long,
        env = "ORDER_SERVICE_HTTP_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub http_addr: SocketAddr,
    /// How long a command waits for its verdict before answering 504, in ms.
    #[arg(
        long,
        env = "ORDER_SERVICE_VERDICT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub verdict_timeout_ms: u64,
    /// How long a command waits for its append to commit before answering
    /// 503 with `Retry-After`, in ms (a broker failover can take longer).
    #[arg(
        long,
        env = "ORDER_SERVICE_APPEND_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub append_timeout_ms: u64,
    /// How often a command without `If-Match` is re-executed after a conflict.
    #[arg(long, env = "ORDER_SERVICE_CONFLICT_RETRIES", default_value_t = 5)]
    pub conflict_retries: u32,
    /// Order snapshots remembered, so a command on an order this instance
    /// just wrote skips reading it from the projector; 0 turns that off.
    #[arg(long, env = "ORDER_SERVICE_SNAPSHOT_CACHE", default_value_t = 100_000)]
    pub snapshot_cache: usize,
    /// How long the first append of a shared transaction waits for others, in µs.
    /// Each transaction costs the broker about as much as a hundred commands
    /// in it, so a few ms of waiting pay for themselves under load (Kafka's
    /// own producer lingers 5 ms by default).
    #[arg(long, env = "ORDER_SERVICE_LINGER_US", default_value_t = 4_000)]
    pub linger_us: u64,
    /// The PostgreSQL database of the read model (`GET /orders`, `GET /orders/{id}/events`).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://orders:orders@127.0.0.1:5432/orders"
    )]
    pub database_url: String,
}

impl Config {
    /// The verdict timeout.
    pub fn verdict_timeout(&self) -> Duration {
        Duration::from_millis(self.verdict_timeout_ms)
    }

    /// The append timeout.
    pub fn append_timeout(&self) -> Duration {
        Duration::from_millis(self.append_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    #[test]
    fn projector_urls_default_to_the_local_projector_and_split_on_commas() {
        let config = Config::try_parse_from(["order-service"]).expect("defaults parse");
        assert_eq!(config.projector_url, ["http://127.0.0.1:8081"]);
        let config = Config::try_parse_from([
            "order-service",
            "--projector-url=http://a:8081,http://b:8081",
        ])
        .expect("a list parses");
        assert_eq!(config.projector_url, ["http://a:8081", "http://b:8081"]);
    }
}
