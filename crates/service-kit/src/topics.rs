//! The flags every service shares: where the brokers are and which topics.

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
}

impl TopicArgs {
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
