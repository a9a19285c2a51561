//! Connection settings shared by every Kafka client of a process.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::ClientConfig;

/// Where the brokers are, how this process names itself to them, and how it
/// connects (security settings and any other librdkafka property).
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Shown in the brokers' logs and metrics.
    pub client_id: String,
    /// Set on every client before the settings each client needs.
    pub properties: ClientProperties,
}

/// librdkafka properties for every client, such as `security.protocol` or
/// `sasl.password`. `Debug` hides the values of secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientProperties(BTreeMap<String, String>);

impl ClientProperties {
    /// Sets `key` to `value`, replacing an earlier value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Every property, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True for properties whose values are credentials (passwords, private
    /// keys, secrets), which no log or `Debug` output may show.
    pub fn is_secret(key: &str) -> bool {
        key.contains("password")
            || key.contains("secret")
            || key == "ssl.key.pem"
            || key == "sasl.oauthbearer.config"
    }
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(key, value)| {
                let shown = if Self::is_secret(key) { "***" } else { value };
                (key, shown)
            }))
            .finish()
    }
}

impl KafkaConfig {
    /// Settings for brokers at `bootstrap_servers`, over plaintext.
    pub fn new(bootstrap_servers: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: client_id.into(),
            properties: ClientProperties::default(),
        }
    }

    /// The same brokers under another client id (one process, several roles).
    pub fn with_client_id(&self, client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            ..self.clone()
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
        prefetch_bounded(&mut config);
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
        prefetch_bounded(&mut config);
        config
    }

    /// The settings every client starts from: the shared properties, then
    /// the brokers and the client id.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in self.properties.iter() {
            config.set(key, value);
        }
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id);
        config
    }
}

/// Bounds what a consumer fetches ahead of its reader to 16 MiB (librdkafka
/// queues up to 64 MiB by default), and lets it fetch again as soon as the
/// reader has taken some: by default a full queue pauses the partition's
/// fetches for a whole second (`fetch.queue.backoff.ms`), which made a
/// bounded queue slow a restore down by half. Properties the operator
/// passed on keep their values.
pub(crate) fn prefetch_bounded(config: &mut ClientConfig) {
    for (key, value) in [
        ("queued.max.messages.kbytes", "16384"),
        ("fetch.queue.backoff.ms", "10"),
    ] {
        if config.get(key).is_none() {
            config.set(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ClientProperties, KafkaConfig};

    #[test]
    fn debug_output_hides_secrets_and_shows_the_rest() {
        let mut config = KafkaConfig::new("broker:9093", "svc");
        config
            .properties
            .set("security.protocol", "SASL_SSL")
            .set("sasl.username", "orders")
            .set("sasl.password", "hunter2")
            .set("ssl.key.password", "keypass")
            .set("ssl.key.pem", "-----BEGIN PRIVATE KEY-----");
        let shown = format!("{config:?}");
        assert!(
            shown.contains("SASL_SSL") && shown.contains("orders"),
            "{shown}"
        );
        for secret in ["hunter2", "keypass", "BEGIN PRIVATE KEY"] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
    }

    #[test]
    fn every_client_gets_the_shared_properties() {
        let mut config = KafkaConfig::new("broker:9093", "svc");
        config.properties.set("security.protocol", "SSL");
        let client = config.self_positioned_consumer_config("g");
        assert_eq!(client.get("security.protocol"), Some("SSL"));
        assert_eq!(client.get("bootstrap.servers"), Some("broker:9093"));
        assert!(ClientProperties::is_secret(
            "sasl.oauthbearer.client.secret"
        ));
        assert!(!ClientProperties::is_secret("sasl.username"));
    }
}
