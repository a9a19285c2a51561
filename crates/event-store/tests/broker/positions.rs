use std::time::Duration;

use event_store::positions::fetch_watermarks;
use event_store::{TopicSpec, ensure_topics};
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::support::{kafka, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermarks_are_asked_again_until_the_partition_can_answer() -> anyhow::Result<()> {
    let config = kafka();
    let topic = unique("late");
    let consumer: BaseConsumer = config
        .self_positioned_consumer_config(&unique("group"))
        .create()?;
    // One request fails while the partition has no leader to ask.
    assert!(
        consumer
            .fetch_watermarks(&topic, 0, Duration::from_secs(2))
            .is_err()
    );

    let asking = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || fetch_watermarks(&consumer, &topic, 0, Duration::from_secs(60))
    });
    ensure_topics(&config, &[TopicSpec::permanent_log(&topic, 1)]).await?;
    assert_eq!(asking.await??, (0, 0));
    Ok(())
}
