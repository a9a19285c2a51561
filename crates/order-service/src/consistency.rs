//! Read your own writes everywhere: the consistency token.
//!
//! Every successful write answers with a `Consistency-Token` naming where
//! its record is in the entity's events topic (topic, partition, offset;
//! opaque to clients). A read that sends it back waits, within a bound,
//! until what it reads from has folded past that record: the projector for
//! one entity's state, the read model for lists and histories. A token that
//! cannot be honoured (another topic, a partition or offset the log does not
//! have) is a 400 at once; a read model that does not catch up in time is a
//! 504, never a stale answer passed off as fresh.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use event_store::probe::KafkaProbe;
use service_kit::Problem;

use crate::execute::Position;

/// The header, on writes' answers and on reads.
pub const HEADER: HeaderName = HeaderName::from_static("consistency-token");

/// How long a read waits for the read model to fold past a token.
pub const MODEL_WAIT: Duration = Duration::from_secs(5);
/// How long asking the brokers where a partition ends may take.
const END_TIMEOUT: Duration = Duration::from_secs(2);
/// The token format's version, so it can change without misreading old ones.
const PREFIX: &str = "ct1.";

/// A write's position in its entity's events topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    topic: String,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
}

impl Token {
    /// The token of a record at `position` of `topic`.
    pub fn new(topic: &str, position: Position) -> Self {
        Self {
            topic: topic.to_owned(),
            partition: position.partition,
            offset: position.offset,
        }
    }

    /// Its text form: `ct1.` and base64url of `topic/partition/offset`.
    pub fn encode(&self) -> String {
        let plain = format!("{}/{}/{}", self.topic, self.partition, self.offset);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(plain))
    }

    /// Parses a token this service handed out.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.strip_prefix(PREFIX)?).ok()?;
        let plain = String::from_utf8(bytes).ok()?;
        let mut parts = plain.rsplitn(3, '/');
        let offset = parts.next()?.parse().ok().filter(|o: &i64| *o >= 0)?;
        let partition = parts.next()?.parse().ok().filter(|p: &i32| *p >= 0)?;
        let topic = parts.next().filter(|t| !t.is_empty())?.to_owned();
        Some(Self {
            topic,
            partition,
            offset,
        })
    }

    /// The header value.
    pub fn header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.encode()).ok()
    }

    /// The token a request sent, if any: 400 when it is not one.
    pub fn from_request(headers: &HeaderMap) -> Result<Option<Self>, Problem> {
        let Some(value) = headers.get(HEADER) else {
            return Ok(None);
        };
        value
            .to_str()
            .ok()
            .and_then(Self::decode)
            .map(Some)
            .ok_or_else(|| bad("Consistency-Token is not a token this API handed out"))
    }

    /// Checks that the token is one of `topic`'s and that the log has its
    /// record: 400 when it names another entity's topic, a partition the
    /// topic does not have, or an offset beyond the partition's end.
    pub async fn check(&self, topic: &str, kafka: &KafkaProbe) -> Result<(), Problem> {
        if self.topic != topic {
            return Err(bad(format!(
                "this Consistency-Token is for another log ({}), not this resource's ({topic})",
                self.topic
            )));
        }
        match kafka.end_offset(topic, self.partition, END_TIMEOUT).await {
            Ok(end) if self.offset < end => Ok(()),
            Ok(end) => Err(bad(format!(
                "this Consistency-Token names offset {} of partition {}, which ends at {end}: it is not from this log",
                self.offset, self.partition
            ))),
            Err(error) if is_unknown_partition(&error) => Err(bad(format!(
                "this Consistency-Token names partition {}, which {topic} does not have",
                self.partition
            ))),
            Err(error) => {
                tracing::warn!(%error, "asking the brokers where a partition ends");
                Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .detail("the brokers did not answer; retry")
                    .retry_after(1))
            }
        }
    }

    /// Waits until the read model behind `pool` has folded past the token's
    /// record: 504 when it has not within [`MODEL_WAIT`].
    pub async fn wait_for_model(&self, pool: &sqlx::PgPool) -> Result<(), Problem> {
        let deadline = Instant::now() + MODEL_WAIT;
        let mut pause = Duration::from_millis(2);
        loop {
            let next = read_model::tables::next_offset(pool, &self.topic, self.partition)
                .await
                .map_err(crate::routes::read::model_unavailable)?;
            if next > self.offset {
                return Ok(());
            }
            if Instant::now() + pause > deadline {
                return Err(Problem::new(StatusCode::GATEWAY_TIMEOUT)
                    .title("Not caught up in time")
                    .detail(format!(
                        "the list has not caught up with this write yet (partition {} at offset {next}, the write at {}); retry",
                        self.partition, self.offset
                    ))
                    .retry_after(1));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

fn bad(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST).detail(detail.into())
}

fn is_unknown_partition(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode;
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::UnknownPartition | RDKafkaErrorCode::UnknownTopicOrPartition)
    )
}

#[cfg(test)]
mod tests {
    use super::Token;
    use crate::execute::Position;

    #[test]
    fn a_token_survives_its_text_form_and_garbage_is_refused() {
        let position = Position {
            partition: 3,
            offset: 1_234,
        };
        let token = Token::new("test-1/x.events", position);
        assert_eq!(Token::decode(&token.encode()), Some(token.clone()));
        assert!(token.encode().starts_with("ct1."));
        for bad in [
            "",
            "ct1.",
            "ct1.!!!",
            "ct2.b3JkZXJzLmV2ZW50cy8zLzE",
            "orders.events/3/1",
        ] {
            assert_eq!(Token::decode(bad), None, "{bad:?}");
        }
        let negative = format!("ct1.{}", {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("orders.events/-1/5")
        });
        assert_eq!(Token::decode(&negative), None);
    }
}
