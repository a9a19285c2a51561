//! A partition's watermarks, asked again while the cluster moves leaders.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;

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
