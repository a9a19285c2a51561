//! The flags every service shares: where the brokers are, how to connect,
//! which topics and how they are replicated.

use event_store::topics::{Replication, TopicError, TopicSpec};
use event_store::{KafkaConfig, StreamTopics, ensure_topics};

use crate::kafka::{ConnectionError, KafkaClientArgs};

/// The topic prefix when none is given: the orders' topics are `orders.*`.
pub const DEFAULT_PREFIX: &str = "orders";

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
    /// Prefix of the orders' topic names (`<prefix>.events`, `<prefix>.changes`,
    /// ...). Any other entity's topics are named after it (`inventory.events`),
    /// under `<prefix>-` when this is not the default.
    #[arg(long, env = "TOPIC_PREFIX", default_value = DEFAULT_PREFIX)]
    pub topic_prefix: String,
    /// Partitions of the topics, created with this count or checked against it.
    #[arg(long, env = "TOPIC_PARTITIONS", default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
    /// Replicas of every topic, created with this factor or checked against
    /// it; `min.insync.replicas` is one less (at least 1). Default: the
    /// smaller of 3 and the number of brokers.
    #[arg(long, env = "TOPIC_REPLICATION_FACTOR", value_parser = clap::value_parser!(i32).range(1..=16))]
    pub replication_factor: Option<i32>,
    /// How the clients connect.
    #[command(flatten)]
    pub client: KafkaClientArgs,
}

/// Topics that do not match the settings, with the settings to look at.
#[derive(Debug, thiserror::Error)]
#[error("{source} ({hint})")]
pub struct TopicSetupError {
    source: TopicError,
    hint: &'static str,
}

impl TopicArgs {
    /// Client settings for this process, checked against the cluster once.
    pub async fn connect(&self, client_id: &str) -> Result<KafkaConfig, ConnectionError> {
        self.client
            .connect(&self.kafka_bootstrap_servers, client_id)
            .await
    }

    /// How many replicas topics must have.
    pub fn replication(&self) -> Replication {
        self.replication_factor
            .map_or(Replication::ClusterSize, Replication::Factor)
    }

    /// Creates `specs`' topics with the replication setting, or checks them.
    pub async fn ensure(
        &self,
        kafka: &KafkaConfig,
        specs: Vec<TopicSpec>,
    ) -> Result<(), TopicSetupError> {
        let specs: Vec<TopicSpec> = specs
            .into_iter()
            .map(|spec| spec.replication(self.replication()))
            .collect();
        ensure_topics(kafka, &specs).await.map_err(|source| {
            let hint = match &source {
                TopicError::PartitionCount { .. } => "--partitions, TOPIC_PARTITIONS",
                TopicError::ReplicationFactor { .. } | TopicError::NotEnoughBrokers { .. } => {
                    "--replication-factor, TOPIC_REPLICATION_FACTOR"
                }
                TopicError::Config { key, .. } if key == "min.insync.replicas" => {
                    "one less than the replication factor: --replication-factor, TOPIC_REPLICATION_FACTOR"
                }
                TopicError::Config { .. } => "the topic's configs were changed by hand",
                TopicError::Create { .. } | TopicError::NotVisible { .. } | TopicError::Kafka(_) => {
                    "--kafka-bootstrap-servers, KAFKA_BOOTSTRAP_SERVERS"
                }
            };
            TopicSetupError { source, hint }
        })
    }

    /// The four topics of a stream, created or checked.
    pub async fn ensure_stream(
        &self,
        kafka: &KafkaConfig,
        topics: &StreamTopics,
    ) -> Result<(), TopicSetupError> {
        self.ensure(kafka, topics.specs(self.partitions)).await
    }

    /// The consumer group of a service's instances: `named` when given,
    /// else `<topic prefix>-<service>`, so other topics get another group
    /// (two services sharing a static member across topic sets would be
    /// handed each other's partitions).
    pub fn group_id(&self, named: Option<&str>, service: &str) -> String {
        named.map_or_else(|| format!("{}-{service}", self.topic_prefix), str::to_owned)
    }

    /// The prefix of entity type `entity`'s topics. The orders keep
    /// `--topic-prefix` itself; another entity is named after itself, and a
    /// deployment (or a test) with a prefix of its own gets its own topics
    /// for every entity: `inventory.*` by default, `<prefix>-inventory.*`
    /// otherwise.
    pub fn entity_prefix(&self, entity: &str) -> String {
        if entity == DEFAULT_PREFIX {
            self.topic_prefix.clone()
        } else if self.topic_prefix == DEFAULT_PREFIX {
            entity.to_owned()
        } else {
            format!("{}-{entity}", self.topic_prefix)
        }
    }

    /// The consumer group of a service's instances for one entity type: the
    /// orders' is [`group_id`](Self::group_id); another entity's is
    /// `<that group>-<entity>` when named, else `<entity prefix>-<service>`.
    pub fn entity_group_id(&self, entity: &str, named: Option<&str>, service: &str) -> String {
        match named {
            _ if entity == DEFAULT_PREFIX => self.group_id(named, service),
            Some(named) => format!("{named}-{entity}"),
            None => format!("{}-{service}", self.entity_prefix(entity)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TopicArgs;

    fn args(prefix: &str) -> TopicArgs {
        TopicArgs {
            kafka_bootstrap_servers: String::new(),
            topic_prefix: prefix.into(),
            partitions: 1,
            replication_factor: None,
            client: Default::default(),
        }
    }

    #[test]
    fn every_entity_has_topics_and_a_group_of_its_own() {
        let default = args("orders");
        assert_eq!(default.entity_prefix("orders"), "orders");
        assert_eq!(default.entity_prefix("inventory"), "inventory");
        assert_eq!(
            default.entity_group_id("orders", None, "projector"),
            "orders-projector"
        );
        assert_eq!(
            default.entity_group_id("inventory", None, "projector"),
            "inventory-projector"
        );
        let test = args("t-1");
        assert_eq!(test.entity_prefix("orders"), "t-1");
        assert_eq!(test.entity_prefix("inventory"), "t-1-inventory");
        assert_eq!(
            test.entity_group_id("inventory", None, "projector"),
            "t-1-inventory-projector"
        );
        assert_eq!(test.entity_group_id("orders", Some("g"), "projector"), "g");
        assert_eq!(
            test.entity_group_id("inventory", Some("g"), "projector"),
            "g-inventory"
        );
    }
}
