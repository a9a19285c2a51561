use event_store::{Replication, StreamTopics, TopicError, TopicSpec, ensure_topics};

use crate::support::{kafka, unique};

#[tokio::test]
async fn a_first_start_creates_the_topics_and_a_second_start_accepts_them() -> anyhow::Result<()> {
    let config = kafka();
    let specs = StreamTopics::new(&unique("orders")).specs(3);

    ensure_topics(&config, &specs).await?;
    ensure_topics(&config, &specs).await?;
    Ok(())
}

#[tokio::test]
async fn the_events_log_never_expires_and_the_changelog_is_compacted() -> anyhow::Result<()> {
    let config = kafka();
    let topics = StreamTopics::new(&unique("orders"));
    ensure_topics(&config, &topics.specs(2)).await?;

    // Check the broker's view through the same verifier with stricter specs:
    // a topic that lacked these configs would fail here.
    let expected = [
        TopicSpec::permanent_log(&topics.events, 2).config("cleanup.policy", "delete"),
        TopicSpec::permanent_log(&topics.changes, 2),
        TopicSpec::compacted(&topics.changelog, 2),
    ];
    ensure_topics(&config, &expected).await?;

    let compacted_events = [TopicSpec::compacted(&topics.events, 2)];
    let error = ensure_topics(&config, &compacted_events).await.unwrap_err();
    assert!(
        matches!(&error, TopicError::Config { topic, key, actual, .. }
            if topic == &topics.events && key == "cleanup.policy" && actual == "delete"),
        "unexpected: {error}"
    );
    Ok(())
}

#[tokio::test]
async fn a_partition_count_mismatch_is_an_error_naming_the_topic() -> anyhow::Result<()> {
    let config = kafka();
    let topics = StreamTopics::new(&unique("orders"));
    ensure_topics(&config, &topics.specs(2)).await?;

    let error = ensure_topics(&config, &topics.specs(4)).await.unwrap_err();

    let message = error.to_string();
    assert!(
        matches!(
            &error,
            TopicError::PartitionCount {
                expected: 4,
                actual: 2,
                ..
            }
        ),
        "unexpected: {message}"
    );
    assert!(
        message.contains(&topics.events),
        "the message names the topic: {message}"
    );
    Ok(())
}

#[tokio::test]
async fn a_topic_created_by_hand_with_other_retention_is_rejected() -> anyhow::Result<()> {
    let config = kafka();
    let name = unique("events");
    ensure_topics(
        &config,
        &[TopicSpec::compacted(&name, 1).config("retention.ms", "60000")],
    )
    .await?;

    let error = ensure_topics(&config, &[TopicSpec::permanent_log(&name, 1)])
        .await
        .unwrap_err();

    assert!(
        matches!(&error, TopicError::Config { topic, .. } if topic == &name),
        "unexpected: {error}"
    );
    Ok(())
}

#[tokio::test]
async fn replication_is_checked_like_partitions() -> anyhow::Result<()> {
    // The test broker is a single node: three replicas cannot be placed.
    let config = kafka();
    let name = unique("events");
    let three = [TopicSpec::permanent_log(&name, 1).replication(Replication::Factor(3))];
    let error = ensure_topics(&config, &three).await.unwrap_err();
    assert!(
        matches!(&error, TopicError::NotEnoughBrokers { factor: 3, brokers, .. } if *brokers >= 1),
        "unexpected: {error}"
    );

    // By default the topic gets what the cluster allows, and a min ISR one
    // below (at least 1), which a later start checks.
    ensure_topics(&config, &[TopicSpec::permanent_log(&name, 1)]).await?;
    let exact = [TopicSpec::permanent_log(&name, 1).replication(Replication::Factor(1))];
    ensure_topics(&config, &exact).await?;
    let two = [TopicSpec::permanent_log(&name, 1).replication(Replication::Factor(2))];
    let error = ensure_topics(&config, &two).await.unwrap_err();
    assert!(
        matches!(&error, TopicError::ReplicationFactor { topic, actual: 1, expected } if topic == &name && expected == "2"),
        "unexpected: {error}"
    );
    Ok(())
}
