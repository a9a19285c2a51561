//! Is the Kafka cluster reachable? For readiness checks.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;

use crate::KafkaConfig;

/// A long-lived client that asks the brokers for metadata on demand.
#[derive(Clone)]
pub struct KafkaProbe {
    admin: Arc<AdminClient<DefaultClientContext>>,
}

impl KafkaProbe {
    /// A probe of the brokers in `config`.
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        Ok(Self {
            admin: Arc::new(config.client_config().create()?),
        })
    }

    /// True when a broker answers a metadata request within `timeout`.
    pub async fn reachable(&self, timeout: Duration) -> bool {
        let admin = self.admin.clone();
        // The metadata call blocks; keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            admin
                .inner()
                .fetch_metadata(None, timeout)
                .is_ok_and(|m| !m.brokers().is_empty())
        })
        .await
        .unwrap_or(false)
    }

    /// The end of `topic`'s `partition`: the offset its next record will
    /// have. Fails when the partition does not exist or no broker answers.
    pub async fn end_offset(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<i64, KafkaError> {
        let (admin, topic) = (self.admin.clone(), topic.to_owned());
        tokio::task::spawn_blocking(move || {
            admin
                .inner()
                .fetch_watermarks(&topic, partition, timeout)
                .map(|(_, high)| high)
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled))
    }
}
