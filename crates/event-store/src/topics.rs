//! The topics an aggregate needs, created when missing and checked when present.
//!
//! Start-up calls [`ensure_topics`] with the specs of [`StreamTopics`]: a second
//! start finds the topics and verifies them, so a topic created by hand with the
//! wrong partition count or retention is a start-up error, never silent drift.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::KafkaConfig;

/// How long metadata calls may take at start-up.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One topic's required shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic's name.
    pub name: String,
    /// Its partition count; co-partitioned topics share one.
    pub partitions: i32,
    /// Replicas per partition (1 on a single-node development broker).
    pub replication_factor: i32,
    /// Topic-level configs that must hold exactly.
    pub configs: BTreeMap<String, String>,
}

impl TopicSpec {
    /// A log that is never deleted and never compacted: every record stays.
    pub fn permanent_log(name: impl Into<String>, partitions: i32) -> Self {
        Self::new(name, partitions)
            .config("cleanup.policy", "delete")
            .config("retention.ms", "-1")
            .config("retention.bytes", "-1")
    }

    /// A compacted topic: the latest record per key stays.
    pub fn compacted(name: impl Into<String>, partitions: i32) -> Self {
        Self::new(name, partitions).config("cleanup.policy", "compact")
    }

    fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
        }
    }

    /// Requires a topic config value.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.configs.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the replication factor used when the topic is created.
    pub fn replication_factor(mut self, replicas: i32) -> Self {
        self.replication_factor = replicas;
        self
    }
}

/// The topics of one aggregate type, named from a prefix such as `orders`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamTopics {
    /// Appended commands' events (`<prefix>.events`).
    pub events: String,
    /// Accepted events with the state after each (`<prefix>.changes`).
    pub changes: String,
    /// The state store's compacted changelog (`<prefix>.store-changelog`).
    pub changelog: String,
    /// Records of `events` that are not valid envelopes (`<prefix>.events.dlq`).
    pub events_dlq: String,
}

impl StreamTopics {
    /// The default names under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            events: format!("{prefix}.events"),
            changes: format!("{prefix}.changes"),
            changelog: format!("{prefix}.store-changelog"),
            events_dlq: format!("{prefix}.events.dlq"),
        }
    }

    /// The specs of all four topics; the first three are co-partitioned.
    pub fn specs(&self, partitions: i32) -> Vec<TopicSpec> {
        vec![
            TopicSpec::permanent_log(&self.events, partitions),
            TopicSpec::permanent_log(&self.changes, partitions),
            TopicSpec::compacted(&self.changelog, partitions),
            TopicSpec::permanent_log(&self.events_dlq, partitions),
        ]
    }
}

/// Why the topics could not be made to match their specs.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The topic exists with another partition count.
    #[error("topic `{topic}` has {actual} partitions, but {expected} are required")]
    PartitionCount {
        /// The topic.
        topic: String,
        /// What the spec says.
        expected: i32,
        /// What the broker has.
        actual: i32,
    },
    /// The topic exists with another value for a required config.
    #[error("topic `{topic}` has {key}={actual}, but {key}={expected} is required")]
    Config {
        /// The topic.
        topic: String,
        /// The config key.
        key: String,
        /// What the spec says.
        expected: String,
        /// What the broker has (`<unset>` when absent).
        actual: String,
    },
    /// The broker refused to create the topic.
    #[error("could not create topic `{topic}`: {code}")]
    Create {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
    /// The topic did not show up in the metadata after it was created.
    #[error("topic `{topic}` is still missing from the cluster metadata after {waited:?}")]
    NotVisible {
        /// The topic.
        topic: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The brokers could not be asked.
    #[error("Kafka admin request failed: {0}")]
    Kafka(#[from] KafkaError),
}

/// Creates the missing topics, then checks that every topic matches its spec.
///
/// Idempotent, and safe when several instances start at once: a topic another
/// instance created in the meantime is checked like any other.
pub async fn ensure_topics(config: &KafkaConfig, specs: &[TopicSpec]) -> Result<(), TopicError> {
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));

    let existing = partition_counts(&admin, specs)?;
    let missing: Vec<&TopicSpec> = specs
        .iter()
        .filter(|s| !existing.contains_key(&s.name))
        .collect();
    if !missing.is_empty() {
        let new_topics: Vec<NewTopic> = missing.iter().map(|s| new_topic(s)).collect();
        for result in admin.create_topics(&new_topics, &options).await? {
            match result {
                Ok(name) => tracing::info!(topic = %name, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(TopicError::Create { topic, code }),
            }
        }
    }

    let counts = wait_until_visible(&admin, specs).await?;
    for spec in specs {
        let actual = counts[&spec.name];
        if actual != spec.partitions {
            return Err(TopicError::PartitionCount {
                topic: spec.name.clone(),
                expected: spec.partitions,
                actual,
            });
        }
    }
    check_configs(&admin, &options, specs).await
}

fn new_topic(spec: &TopicSpec) -> NewTopic<'_> {
    spec.configs.iter().fold(
        NewTopic::new(
            &spec.name,
            spec.partitions,
            TopicReplication::Fixed(spec.replication_factor),
        ),
        |topic, (key, value)| topic.set(key, value),
    )
}

/// Partition counts of the specs' topics that exist.
///
/// A metadata fetch blocks briefly; this runs once, at start-up.
fn partition_counts(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[TopicSpec],
) -> Result<BTreeMap<String, i32>, KafkaError> {
    let metadata = admin.inner().fetch_metadata(None, ADMIN_TIMEOUT)?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && specs.iter().any(|s| s.name == t.name()))
        .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
        .collect())
}

/// A created topic reaches the metadata a moment later.
async fn wait_until_visible(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[TopicSpec],
) -> Result<BTreeMap<String, i32>, TopicError> {
    let started = Instant::now();
    loop {
        let counts = partition_counts(admin, specs)?;
        match specs.iter().find(|s| !counts.contains_key(&s.name)) {
            None => return Ok(counts),
            Some(spec) if started.elapsed() > ADMIN_TIMEOUT => {
                return Err(TopicError::NotVisible {
                    topic: spec.name.clone(),
                    waited: started.elapsed(),
                });
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn check_configs(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    specs: &[TopicSpec],
) -> Result<(), TopicError> {
    let resources: Vec<ResourceSpecifier> = specs
        .iter()
        .map(|s| ResourceSpecifier::Topic(&s.name))
        .collect();
    for described in admin.describe_configs(&resources, options).await? {
        let resource = described.map_err(KafkaError::AdminOp)?;
        let OwnedResourceSpecifier::Topic(topic) = &resource.specifier else {
            continue;
        };
        let Some(spec) = specs.iter().find(|s| &s.name == topic) else {
            continue;
        };
        let entries = resource.entry_map();
        for (key, expected) in &spec.configs {
            let actual = entries.get(key.as_str()).and_then(|e| e.value.as_deref());
            if actual != Some(expected.as_str()) {
                return Err(TopicError::Config {
                    topic: topic.clone(),
                    key: key.clone(),
                    expected: expected.clone(),
                    actual: actual.unwrap_or("<unset>").to_owned(),
                });
            }
        }
    }
    Ok(())
}
