//! Committing the open transaction: changelog records, changes, dead
//! letters and the consumed offsets in one Kafka transaction, and only then
//! the local stores; and recovering when a transaction fails.

use super::*;

impl<A: Aggregate> Fold<A> {
    /// Commits the open transaction: changelog records, consumed offsets, and
    /// then (only then) the local stores.
    pub(crate) fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), ProcessorError> {
        if !self.in_transaction {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        let mut writes = BTreeMap::new();
        let mut changelog_sends = BTreeMap::new();
        for (&partition, task) in &mut self.tasks {
            if task.position == task.committed.input && task.pending.is_empty() {
                continue;
            }
            offsets.add_partition_offset(
                &self.config.topics.events,
                partition,
                Offset::Offset(task.position),
            )?;
            // One changelog record per aggregate per transaction, however
            // many commands changed it.
            let snapshots: Vec<(Uuid, Encoded)> = task
                .pending
                .drain()
                .map(|(id, (_, bytes))| (id, bytes))
                .collect();
            // The changelog position after the commit is the last record's.
            let mut last_send = None;
            for (index, (id, bytes)) in snapshots.iter().enumerate() {
                let mut key = Uuid::encode_buffer();
                let record = OutgoingRecord {
                    topic: &self.config.topics.changelog,
                    key: id.hyphenated().encode_lower(&mut key).as_bytes(),
                    payload: bytes,
                    headers: &[],
                };
                if index + 1 == snapshots.len() {
                    last_send = Some(self.producer.send_tracked(record)?);
                } else {
                    self.producer.send(record)?;
                }
            }
            changelog_sends.insert(partition, last_send);
            writes.insert(
                partition,
                CommittedWrites {
                    snapshots,
                    outcomes: std::mem::take(&mut task.outcomes),
                    positions: Positions {
                        input: task.position,
                        changelog: task.committed.changelog,
                    },
                },
            );
        }
        let group = consumer
            .group_metadata()
            .ok_or(ProcessorError::NoGroupMetadata)?;
        let committed = self
            .producer
            .send_offsets(offsets, group)
            .and_then(|()| self.producer.commit());
        self.in_transaction = false;
        if let Err(error) = committed {
            return self.recover(consumer, error);
        }
        let commits = self
            .registry
            .metrics
            .commits
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if self.config.crash_after_commits == Some(commits) {
            tracing::warn!(
                commits,
                "fault injection: aborting between the Kafka commit and the store writes"
            );
            std::process::abort();
        }

        for (partition, mut write) in writes {
            let Some(task) = self.tasks.get_mut(&partition) else {
                continue;
            };
            if let Some(Some(send)) = changelog_sends.remove(&partition) {
                // Delivered by now: a commit flushes every record first. If the
                // report were somehow missing, keeping the older position only
                // makes a restart re-read a little more of the changelog.
                if let Some(Ok(appended)) = send.completed() {
                    write.positions.changelog = appended.offset + 1;
                }
            }
            let positions = write.positions;
            task.handle.store.apply(write)?;
            task.committed = positions;
            task.handle.set_committed(positions.input);
        }
        Ok(())
    }

    /// After a failed transaction: abort it (or replace a fatally failed
    /// producer), forget what it folded, and re-read from the committed offsets.
    fn recover<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        error: TxError,
    ) -> Result<(), ProcessorError> {
        self.registry.metrics.aborts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%error, "transaction failed; rewinding to the committed offsets");
        let aborted = match error.kind {
            TxErrorKind::Fatal => Err(error),
            _ => self.producer.abort(),
        };
        if let Err(error) = aborted {
            tracing::warn!(%error, "replacing the producer");
            self.producer = TransactionalProducer::with_timeout(
                &self.config.kafka,
                self.producer.transactional_id(),
                self.config.transaction_timeout(),
            )?;
        }
        for (&partition, task) in &mut self.tasks {
            task.pending.clear();
            task.outcomes.clear();
            task.handle.rewind(task.position);
            task.position = task.committed.input;
            consumer.seek(
                &self.config.topics.events,
                partition,
                Offset::Offset(task.committed.input),
                SEEK_TIMEOUT,
            )?;
        }
        Ok(())
    }
}
