//! The flags every service shares: where the brokers are and which topics.

/// Kafka connection and topic flags, flattened into each service's `Config`.
#[derive(Clone, Debug, clap::Args)]
pub struct TopicArgs {
    /// Kafka brokers, `host:port[,host:port]`.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub kafka_bootstrap_servers: String,
    /// Prefix of the topic names (`<prefix>.events`, `<prefix>.changes`, ...).
    #[arg(long, env = "TOPIC_PREFIX", default_value = "orders")]
    pub topic_prefix: String,
    /// Partitions of the topics, created with this count or checked against it.
    #[arg(long, env = "TOPIC_PARTITIONS", default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
}
