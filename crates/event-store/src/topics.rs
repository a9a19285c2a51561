//! The topics an aggregate needs, created when missing and checked when present.
//!
//! Start-up calls [`ensure_topics`] with the specs of [`StreamTopics`]: a second
//! start finds the topics and verifies them, so a topic created by hand with the
//! wrong partition count, replication or retention is a start-up error, never
//! silent drift.
//!
//! Every topic gets `min.insync.replicas` one below its replication factor
//! (at least 1): with three replicas an acknowledged write is on two brokers,
//! and one broker may be down without stopping writes.

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
    /// Replicas per partition.
    pub replication: Replication,
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
            replication: Replication::ClusterSize,
            configs: BTreeMap::new(),
        }
    }

    /// Requires a topic config value.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.configs.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets how many replicas the topic must have.
    pub fn replication(mut self, replication: Replication) -> Self {
        self.replication = replication;
        self
    }
}

/// How many copies of each partition a topic keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Replication {
    /// Created with the smaller of 3 and the number of brokers; an existing
    /// topic must have at least that many (one broker down at start-up does
    /// not make a three-replica topic wrong).
    #[default]
    ClusterSize,
    /// Exactly this many, created so and checked so.
    Factor(i32),
}

impl Replication {
    /// The most replicas a topic gets by default.
    pub const DEFAULT_MAX: i32 = 3;

    /// The factor a new topic gets on a cluster of `brokers`.
    fn for_new_topic(self, brokers: i32) -> i32 {
        match self {
            Self::ClusterSize => brokers.clamp(1, Self::DEFAULT_MAX),
            Self::Factor(factor) => factor,
        }
    }

    /// Whether an existing topic with `actual` replicas is acceptable.
    fn accepts(self, actual: i32, brokers: i32) -> bool {
        match self {
            Self::ClusterSize => actual >= self.for_new_topic(brokers),
            Self::Factor(factor) => actual == factor,
        }
    }
}

/// The `min.insync.replicas` of a topic with `replicas` replicas.
pub fn min_insync_replicas(replicas: i32) -> i32 {
    (replicas - 1).max(1)
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
    /// The topic exists with another replication factor.
    #[error("topic `{topic}` has replication factor {actual}, but {expected} is required")]
    ReplicationFactor {
        /// The topic.
        topic: String,
        /// What the spec says (`at least n` or `n`).
        expected: String,
        /// What the broker has.
        actual: i32,
    },
    /// The topic would need more replicas than the cluster has brokers.
    #[error("topic `{topic}` needs {factor} replicas, but the cluster has {brokers} brokers")]
    NotEnoughBrokers {
        /// The topic.
        topic: String,
        /// The replication factor asked for.
        factor: i32,
        /// Brokers in the cluster's metadata.
        brokers: i32,
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

    let (existing, brokers) = describe(&admin, specs)?;
    let missing: Vec<&TopicSpec> = specs
        .iter()
        .filter(|s| !existing.contains_key(&s.name))
        .collect();
    if !missing.is_empty() {
        let mut new_topics = Vec::with_capacity(missing.len());
        for spec in &missing {
            let factor = spec.replication.for_new_topic(brokers);
            if factor > brokers {
                return Err(TopicError::NotEnoughBrokers {
                    topic: spec.name.clone(),
                    factor,
                    brokers,
                });
            }
            new_topics.push((spec, factor, min_insync_replicas(factor).to_string()));
        }
        let new_topics: Vec<NewTopic> = new_topics
            .iter()
            .map(|(spec, factor, min_isr)| {
                new_topic(spec, *factor).set("min.insync.replicas", min_isr)
            })
            .collect();
        for result in admin.create_topics(&new_topics, &options).await? {
            match result {
                Ok(name) => tracing::info!(topic = %name, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(TopicError::Create { topic, code }),
            }
        }
    }

    let shapes = wait_until_visible(&admin, specs).await?;
    for spec in specs {
        let shape = shapes[&spec.name];
        if shape.partitions != spec.partitions {
            return Err(TopicError::PartitionCount {
                topic: spec.name.clone(),
                expected: spec.partitions,
                actual: shape.partitions,
            });
        }
        if !spec.replication.accepts(shape.replicas, brokers) {
            return Err(TopicError::ReplicationFactor {
                topic: spec.name.clone(),
                expected: match spec.replication {
                    Replication::ClusterSize => {
                        format!("at least {}", spec.replication.for_new_topic(brokers))
                    }
                    Replication::Factor(factor) => factor.to_string(),
                },
                actual: shape.replicas,
            });
        }
    }
    // On a cluster, the broker asked may not have applied a topic created a
    // moment ago: its configs read as unset, or the topic as unknown.
    let started = Instant::now();
    loop {
        match check_configs(&admin, &options, specs, &shapes).await {
            Err(
                error @ (TopicError::Config { .. } | TopicError::Kafka(KafkaError::AdminOp(_))),
            ) if !missing.is_empty() && started.elapsed() < ADMIN_TIMEOUT => {
                tracing::debug!(%error, "topic configs not visible yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            result => return result,
        }
    }
}

fn new_topic(spec: &TopicSpec, factor: i32) -> NewTopic<'_> {
    spec.configs.iter().fold(
        NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(factor)),
        |topic, (key, value)| topic.set(key, value),
    )
}

/// What the broker says of an existing topic.
#[derive(Clone, Copy, Debug)]
struct Shape {
    partitions: i32,
    /// The fewest replicas any of its partitions has.
    replicas: i32,
}

/// The shapes of the specs' topics that exist, and the number of brokers.
///
/// A metadata fetch blocks briefly; this runs once, at start-up.
fn describe(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[TopicSpec],
) -> Result<(BTreeMap<String, Shape>, i32), KafkaError> {
    let metadata = admin.inner().fetch_metadata(None, ADMIN_TIMEOUT)?;
    let shapes = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && specs.iter().any(|s| s.name == t.name()))
        .map(|t| {
            let replicas = t.partitions().iter().map(|p| p.replicas().len() as i32);
            let shape = Shape {
                partitions: t.partitions().len() as i32,
                replicas: replicas.min().unwrap_or(0),
            };
            (t.name().to_owned(), shape)
        })
        .collect();
    Ok((shapes, metadata.brokers().len() as i32))
}

/// A created topic reaches the metadata a moment later.
async fn wait_until_visible(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[TopicSpec],
) -> Result<BTreeMap<String, Shape>, TopicError> {
    let started = Instant::now();
    loop {
        let (shapes, _) = describe(admin, specs)?;
        match specs.iter().find(|s| !shapes.contains_key(&s.name)) {
            None => return Ok(shapes),
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
    shapes: &BTreeMap<String, Shape>,
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
        let min_isr = min_insync_replicas(shapes[topic].replicas).to_string();
        let required = spec
            .configs
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .chain([("min.insync.replicas", min_isr.as_str())]);
        for (key, expected) in required {
            let actual = entries.get(key).and_then(|e| e.value.as_deref());
            if actual != Some(expected) {
                return Err(TopicError::Config {
                    topic: topic.clone(),
                    key: key.to_owned(),
                    expected: expected.to_owned(),
                    actual: actual.unwrap_or("<unset>").to_owned(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Replication, min_insync_replicas};

    #[test]
    fn replicas_follow_the_cluster_up_to_three() {
        let auto = Replication::ClusterSize;
        assert_eq!(auto.for_new_topic(1), 1);
        assert_eq!(auto.for_new_topic(3), 3);
        assert_eq!(auto.for_new_topic(5), 3);
        // A broker down at start-up does not make three replicas wrong.
        assert!(auto.accepts(3, 2));
        assert!(!auto.accepts(1, 3));
        assert!(Replication::Factor(2).accepts(2, 3));
        assert!(!Replication::Factor(2).accepts(3, 3));
        assert_eq!(
            [1, 2, 3, 5].map(min_insync_replicas),
            [1, 1, 2, 4],
            "one replica may be down"
        );
    }
}
