//! The dead-letter topics: records the services could not use, with why.

use event_store::{CommittedRecord, KafkaConfig, read_committed_to_end};
use serde_json::{Value, json};

/// Records shown per topic, the most recent.
const SHOWN: usize = 50;
/// Payload bytes shown per record.
const PREVIEW: usize = 300;

/// The dead-letter topics' most recent records, per topic.
pub async fn read(kafka: &KafkaConfig, topics: &[String]) -> Value {
    let mut listed = Vec::new();
    for topic in topics {
        let records = match read_committed_to_end(kafka, topic).await {
            Ok(records) => records,
            Err(error) => {
                listed.push(json!({"topic": topic, "error": error.to_string()}));
                continue;
            }
        };
        let total = records.len();
        let shown: Vec<Value> = records.iter().rev().take(SHOWN).map(describe).collect();
        listed.push(json!({"topic": topic, "total": total, "records": shown}));
    }
    json!({ "topics": listed })
}

fn describe(record: &CommittedRecord) -> Value {
    let header = |name: &str| {
        record
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
    };
    let payload = record.payload.as_deref().unwrap_or_default();
    let preview = String::from_utf8_lossy(&payload[..payload.len().min(PREVIEW)]).into_owned();
    json!({
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.as_deref().map(String::from_utf8_lossy),
        "reason": header("dlq.reason"),
        "source": header("dlq.topic").map(|topic| json!({
            "topic": topic,
            "partition": header("dlq.partition"),
            "offset": header("dlq.offset"),
        })),
        "payload": preview,
    })
}
