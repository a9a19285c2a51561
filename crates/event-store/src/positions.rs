//! Where consumers stand: a partition's watermarks, asked again while the
//! cluster moves leaders; how far a group is behind them; committing a
//! consumer's position.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

/// How long to wait before asking again.
const PAUSE: Duration = Duration::from_millis(200);

/// The low and high watermarks of `topic`'s `partition`.
///
/// While a broker is down or a partition's leader moves, librdkafka can
/// fail the request at once (the dead broker's handle destroyed, no
/// leader yet) where a moment later it would succeed. So a failure is
/// asked again until `timeout` has passed; only then is it returned.
pub fn fetch_watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> KafkaResult<(i64, i64)> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.fetch_watermarks(topic, partition, left) {
            Ok(watermarks) => return Ok(watermarks),
            Err(error) if left > PAUSE => {
                tracing::warn!(topic, partition, %error, "watermarks unavailable; asking again");
                std::thread::sleep(PAUSE);
            }
            Err(error) => return Err(error),
        }
    }
}

/// Where a consumer stands in a partition: the next offset it delivers. At
/// the end of a partition that is past the last transaction marker, which
/// no record stands for.
pub fn consumer_position<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    match consumer
        .position()
        .ok()?
        .find_partition(topic, partition)?
        .offset()
    {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// How far a group's consumer is behind on `topic`: per partition assigned
/// to it, the high watermark less the group's committed offset. A partition
/// whose figures cannot be read within `timeout` is left out.
pub fn consumer_lag<C: ConsumerContext + 'static>(
    consumer: &impl Consumer<C>,
    topic: &str,
    timeout: Duration,
) -> Vec<(i32, i64)> {
    let Ok(assignment) = consumer.assignment() else {
        return Vec::new();
    };
    let committed = consumer
        .committed_offsets(assignment.clone(), timeout)
        .unwrap_or(assignment);
    committed
        .elements_for_topic(topic)
        .iter()
        .filter_map(|entry| {
            let (_, high) = consumer
                .fetch_watermarks(topic, entry.partition(), timeout)
                .ok()?;
            let at = entry.offset().to_raw().filter(|o| *o >= 0).unwrap_or(0);
            Some((entry.partition(), (high - at).max(0)))
        })
        .collect()
}

/// Commits where `consumer` stands in each assigned partition: past every
/// record it has handed out, so call it once those are dealt with. At a
/// partition's end (`enable.partition.eof`) that is past the last
/// transaction's marker too, which no record stands for, so the lag of a
/// consumer that has everything reads 0, not 1.
pub fn commit_positions<C: ConsumerContext + 'static>(
    consumer: &impl Consumer<C>,
) -> KafkaResult<()> {
    let mut valid = TopicPartitionList::new();
    for element in consumer.position()?.elements() {
        if let Offset::Offset(offset) = element.offset() {
            valid.add_partition_offset(
                element.topic(),
                element.partition(),
                Offset::Offset(offset),
            )?;
        }
    }
    if valid.count() == 0 {
        return Ok(());
    }
    consumer.commit(&valid, CommitMode::Sync)
}
