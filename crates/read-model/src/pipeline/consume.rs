//! The Kafka side of a lane: where it starts (the stored offsets), and
//! gathering the next batch of records.

use event_store::positions::consumer_position;
use rdkafka::message::Headers;

use super::*;

impl<P: Projection> Pipeline<P> {
    /// The stored positions of a lane's partitions (0 where none is stored).
    pub(super) async fn stored_positions(&self, lane: &[i32]) -> Result<Positions, sqlx::Error> {
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT partition, next_offset FROM offsets WHERE topic = $1 AND partition = ANY($2)",
        )
        .bind(&self.config.topic)
        .bind(lane)
        .fetch_all(&self.pool)
        .await?;
        let mut positions: Positions = lane.iter().map(|p| (*p, 0)).collect();
        positions.extend(rows);
        Ok(positions)
    }

    pub(super) fn assign(
        &self,
        consumer: &StreamConsumer<QuietEof>,
        positions: &Positions,
    ) -> Result<(), KafkaError> {
        let stopped = lock(&self.metrics.stopped);
        let mut list = TopicPartitionList::new();
        for (&partition, &offset) in positions {
            if !stopped.contains_key(&partition) {
                list.add_partition_offset(&self.config.topic, partition, Offset::Offset(offset))?;
            }
        }
        consumer.assign(&list)
    }

    /// Gathers the next batch: waits for one record or a partition's end,
    /// then lingers briefly for more. `None` once shut down.
    pub(super) async fn next_batch(
        &self,
        consumer: &StreamConsumer<QuietEof>,
        shutdown: &mut watch::Receiver<bool>,
        limit: &Limit,
        positions: &Positions,
    ) -> Result<Option<Batch<P>>, PipelineError> {
        let mut records = Vec::new();
        let mut ends = Positions::new();
        let mut seen: HashMap<i32, i64> = HashMap::new();
        let mut deadline = None;
        while records.len() < self.config.max_batch {
            let message = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return Ok(None),
                message = consumer.recv() => message,
                () = sleep_until(deadline) => break,
            };
            let message = match message {
                Ok(message) => message,
                Err(KafkaError::PartitionEOF(partition)) => {
                    // Every record of the partition is in hand: once they are
                    // written, the lane stands at the end, past the last
                    // transaction's marker, which no record stands for.
                    // A replay reports no further than its target: the
                    // records past it were skipped, not written.
                    let end =
                        consumer_position(consumer, &self.config.topic, partition).map(|end| {
                            match limit {
                                Limit::Forever => end,
                                Limit::Until(targets) => {
                                    end.min(targets.get(&partition).copied().unwrap_or(0))
                                }
                            }
                        });
                    if let Some(end) = end {
                        ends.insert(partition, end);
                    }
                    deadline
                        .get_or_insert_with(|| tokio::time::Instant::now() + self.config.linger);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "consumer error");
                    continue;
                }
            };
            deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.config.linger);
            let (partition, offset) = (message.partition(), message.offset());
            let expected = seen
                .get(&partition)
                .copied()
                .or_else(|| positions.get(&partition).copied())
                .unwrap_or(0);
            // Records from before a reassignment may still arrive once.
            if offset < expected || lock(&self.metrics.stopped).contains_key(&partition) {
                continue;
            }
            if let Limit::Until(targets) = limit
                && offset >= targets.get(&partition).copied().unwrap_or(0)
            {
                continue;
            }
            let key = message.key().unwrap_or_default();
            let payload = message.payload().unwrap_or_default();
            let decoded = match event_store::processor::decode::<P::Aggregate>(key, payload) {
                Ok(batch) => Some(batch),
                Err(error) if error.needs_newer_code() => {
                    let reason = format!("offset {offset}: {error}");
                    tracing::error!(partition, %reason, "read model partition stopped: upgrade the code to continue");
                    lock(&self.metrics.stopped).insert(partition, reason);
                    let mut paused = TopicPartitionList::new();
                    paused.add_partition(&self.config.topic, partition);
                    consumer.pause(&paused)?;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(partition, offset, %error, "poison record skipped");
                    self.metrics.poison.fetch_add(1, Ordering::Relaxed);
                    None
                }
            };
            seen.insert(partition, offset + 1);
            records.push(Record {
                partition,
                offset,
                appended_ms: message.timestamp().to_millis(),
                trace: hop::exporting()
                    .then(|| {
                        let headers = message.headers()?;
                        TraceParent::from_headers(
                            headers.iter().filter_map(|h| Some((h.key, h.value?))),
                        )
                    })
                    .flatten(),
                batch: decoded,
            });
        }
        Ok(Some(Batch { records, ends }))
    }
}
