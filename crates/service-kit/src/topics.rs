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

impl TopicArgs {
    /// The consumer group of a service's instances: `named` when given,
    /// else `<topic prefix>-<service>`, so other topics get another group
    /// (two services sharing a static member across topic sets would be
    /// handed each other's partitions).
    pub fn group_id(&self, named: Option<&str>, service: &str) -> String {
        named.map_or_else(|| format!("{}-{service}", self.topic_prefix), str::to_owned)
    }
}
