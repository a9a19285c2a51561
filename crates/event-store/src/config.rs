//! Connection settings shared by every Kafka client of a process.

use rdkafka::ClientConfig;

/// Where the brokers are and how this process names itself to them.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Shown in the brokers' logs and metrics.
    pub client_id: String,
}

impl KafkaConfig {
    /// Settings for brokers at `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: client_id.into(),
        }
    }

    /// The settings every client starts from.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id);
        config
    }
}
