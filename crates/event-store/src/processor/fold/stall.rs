//! Noticing a partition the consumer no longer fetches.
//!
//! After leader changes, librdkafka's consumer can leave a partition
//! un-fetched (its fetch state waiting on an offset validation that never
//! completes) while the broker holds committed records for it; only a new
//! consumer fetches it again. Writers would wait for their verdicts in vain,
//! so the fold watches each partition's position and, when it has not moved
//! for a while although the broker has more, asks for a new consumer.
//!
//! A partition can also stand still because a writer's transaction stays
//! open on it: the fold cannot read past the last stable offset until that
//! transaction ends. A new consumer would not help; the fold says so in its log.

use std::time::Instant;

use super::*;

/// How long a partition's position may stand still, with records beyond
/// it on the broker, before its fetch counts as stuck. Above the
/// transaction timeout: an open (or crashed) transaction legitimately holds
/// read_committed readers back that long.
const STALL_AFTER: Duration = Duration::from_secs(30);
/// How long the check may wait for a partition's high watermark.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a partition's consumer position was last seen to move.
pub(super) struct Progress {
    position: i64,
    since: Instant,
}

impl Progress {
    pub(super) fn at(position: i64) -> Self {
        Self {
            position,
            since: Instant::now(),
        }
    }
}

/// A partition whose fetch stands still with records beyond it.
pub(crate) struct Stall {
    partition: i32,
    position: i64,
    high_watermark: i64,
    still: Duration,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "partition {} at offset {} of {} for {} s",
            self.partition,
            self.position,
            self.high_watermark,
            self.still.as_secs()
        )
    }
}

impl<A: Aggregate> Fold<A> {
    /// The owned partitions whose position has not moved for
    /// [`STALL_AFTER`] although the broker has records beyond it. Asks the
    /// broker only about partitions that stood still that long.
    pub(crate) fn stalls<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Vec<Stall> {
        let topic = &self.config.topics.events;
        let mut stalls = Vec::new();
        for (&partition, task) in &mut self.tasks {
            if task.stopped {
                continue;
            }
            let position = consumer_position(consumer, topic, partition)
                .unwrap_or(task.position)
                .max(task.position);
            if position != task.progress.position {
                task.progress = Progress::at(position);
                continue;
            }
            let still = task.progress.since.elapsed();
            if still < STALL_AFTER {
                continue;
            }
            match consumer.fetch_watermarks(topic, partition, WATERMARK_TIMEOUT) {
                Ok((_, high)) if high > position => stalls.push(Stall {
                    partition,
                    position,
                    high_watermark: high,
                    still,
                }),
                // Nothing readable beyond it (the consumer's watermark is the
                // last stable offset): idle, or held by an open transaction,
                // which a new consumer would not change. Look again in a while.
                Ok(_) => {
                    let log_end = task.handle.log_end();
                    if log_end > position {
                        tracing::warn!(
                            topic,
                            partition,
                            stable_end = position,
                            high_watermark = log_end,
                            still_s = still.as_secs(),
                            "an open transaction holds the partition back; if its writer is \
                             gone and the broker does not abort it, abort it with \
                             kafka-transactions.sh"
                        );
                    }
                    task.progress = Progress::at(position);
                }
                Err(error) => tracing::debug!(partition, %error, "high watermark unknown"),
            }
        }
        stalls
    }
}
