use event_store::KafkaConfig;
use uuid::Uuid;

/// The broker the scripts start, or `KAFKA_BOOTSTRAP_SERVERS`.
pub fn kafka() -> KafkaConfig {
    let servers =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    KafkaConfig::new(servers, format!("event-store-test-{}", Uuid::now_v7()))
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!("test-{prefix}-{}", Uuid::now_v7().simple())
}
