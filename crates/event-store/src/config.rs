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

    /// A consumer that reads partitions to their end with `read_committed`
    /// and commits nothing (checks, tools, restoring stores).
    pub(crate) fn read_to_end_config(&self, purpose: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            // No offsets are ever committed under this group: it only satisfies the client.
            .set("group.id", format!("{}-{purpose}", self.client_id))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            // Reaching the end is the goal: do not let the broker hold an empty fetch.
            .set("fetch.wait.max.ms", "10");
        config
    }

    /// A consumer of committed records (`read_committed`) that keeps its
    /// position elsewhere: it commits nothing to Kafka by itself, and its
    /// owner assigns partitions with the offsets it stored.
    pub fn self_positioned_consumer_config(&self, group_id: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "50");
        config
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
