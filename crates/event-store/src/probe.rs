//! Is the Kafka cluster reachable, with these credentials? For start-up and
//! readiness checks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

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

/// Why the cluster could not be reached at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A broker answered and refused the credentials.
    #[error("the brokers refused the credentials: {0}")]
    Authentication(String),
    /// The TLS handshake failed (unknown CA, wrong certificate, plaintext
    /// peer), or the broker refused the client certificate or its absence.
    #[error("the TLS handshake with the brokers failed: {0}")]
    Tls(String),
    /// No broker answered in time.
    #[error("no broker answered within {} s (last error: {last})", waited.as_secs())]
    Unreachable {
        /// How long we tried.
        waited: Duration,
        /// What the client last reported.
        last: String,
    },
    /// The settings were refused before any connection (an unknown property, say).
    #[error("invalid client settings: {0}")]
    Settings(#[from] KafkaError),
}

/// Remembers the last error the client reported, which a metadata request
/// that merely times out does not tell.
#[derive(Default)]
struct LastError(Mutex<Option<(RDKafkaErrorCode, String)>>);

// A producer serves the error callbacks on its poll, which this check calls;
// it never produces.
impl ProducerContext for LastError {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

impl ClientContext for LastError {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
        if let Ok(mut last) = self.0.lock() {
            // "All brokers are down" follows each broker's own failure and
            // says less than it: keep the failure.
            if code != RDKafkaErrorCode::AllBrokersDown || last.is_none() {
                *last = Some((code, reason.to_owned()));
            }
        }
    }
}

/// Connects to the cluster once and asks for its metadata: a wrong password
/// or CA becomes an error that says so within seconds, where every client
/// would otherwise retry in silence. Returns the number of brokers.
pub async fn check_connection(
    config: &KafkaConfig,
    timeout: Duration,
) -> Result<usize, ConnectError> {
    let client: BaseProducer<LastError> = config
        .client_config()
        .create_with_context(LastError::default())?;
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        loop {
            let attempt = client
                .client()
                .fetch_metadata(None, Duration::from_millis(500));
            if let Ok(metadata) = &attempt
                && !metadata.brokers().is_empty()
            {
                return Ok(metadata.brokers().len());
            }
            // Serves the error callbacks.
            client.poll(Duration::ZERO);
            let last = client.context().0.lock().ok().and_then(|l| l.clone());
            match last {
                Some((RDKafkaErrorCode::Authentication, reason)) => {
                    return Err(ConnectError::Authentication(reason));
                }
                Some((RDKafkaErrorCode::SSL, reason)) => return Err(ConnectError::Tls(reason)),
                // The broker ended the handshake with an alert on purpose: a
                // client certificate missing or not trusted, say.
                Some((_, reason)) if reason.contains("SSL") && reason.contains(" alert ") => {
                    return Err(ConnectError::Tls(reason));
                }
                last if started.elapsed() >= timeout => {
                    let last = last.map_or_else(
                        || attempt.err().map_or_else(String::new, |e| e.to_string()),
                        |(_, reason)| reason,
                    );
                    return Err(ConnectError::Unreachable {
                        waited: started.elapsed(),
                        last,
                    });
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or(Err(ConnectError::Settings(KafkaError::Canceled)))
}
