//! Partitions coming and going: taking one over (restored from the
//! changelog before anything is folded), releasing it, and the end of its
//! input.

use super::*;

impl<A: Aggregate> Fold<A> {
    /// Takes over newly assigned partitions: opens each store and brings it
    /// up to what Kafka committed before folding anything.
    pub(crate) fn adopt<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        partitions: &[i32],
    ) -> Result<(), ProcessorError> {
        let mut wanted = TopicPartitionList::new();
        for &partition in partitions {
            wanted.add_partition(&self.config.topics.events, partition);
        }
        let committed = consumer.committed_offsets(wanted, COMMITTED_OFFSETS_TIMEOUT)?;
        for &partition in partitions {
            let entry = committed.find_partition(&self.config.topics.events, partition);
            // Refolding from 0 because the offset could not be read would
            // emit every change again: an unreadable offset fails the takeover.
            if let Some(Err(source)) = entry.as_ref().map(|e| e.error()) {
                return Err(ProcessorError::OffsetUnreadable { partition, source });
            }
            let input = match entry.map(|e| e.offset()) {
                Some(Offset::Offset(offset)) => offset,
                // No offset committed yet: the group starts at the beginning.
                _ => 0,
            };
            let store = self.open_restored(partition, input)?;
            let positions = store.positions()?;
            let handle = Arc::new(PartitionHandle::new(partition, store, input));
            // The previous owner may have answered for anything committed to
            // the input so far (it answers before its own commit), and then
            // crashed: reads wait until this fold has caught up with that.
            let (_, end) = crate::positions::fetch_watermarks(
                consumer,
                &self.config.topics.events,
                partition,
                METADATA_TIMEOUT,
            )?;
            handle.settle_at(end);
            self.registry.insert(handle.clone());
            self.tasks.insert(
                partition,
                Task {
                    handle,
                    committed: positions,
                    position: input,
                    pending: HashMap::new(),
                    outcomes: Vec::new(),
                    stopped: false,
                    progress: stall::Progress::at(input),
                },
            );
            tracing::info!(topic = %self.config.topics.events, partition, input, "partition assigned");
        }
        Ok(())
    }

    fn open_restored(
        &self,
        partition: i32,
        input: i64,
    ) -> Result<Arc<PartitionStore>, ProcessorError> {
        let path = store_path(
            &self.config.state_dir,
            &self.config.topics.events,
            partition,
        );
        let options = &self.config.store_options;
        // A standby copy kept here stops, and its store (already nearly
        // current) is the one opened below.
        self.registry.standbys.claim(partition);
        let store = self.registry.stores.open(&path, options)?;
        let restore = |store: &PartitionStore| {
            restore_partition(
                &self.config.kafka,
                &self.config.topics.changelog,
                partition,
                store,
                input,
            )
        };
        let started = std::time::Instant::now();
        let restored = restore(&store);
        if let Ok(records) = restored {
            let seconds = started.elapsed().as_secs_f64();
            self.registry
                .set_restored(partition, Restored { records, seconds });
        }
        match restored {
            Ok(_) => Ok(store),
            Err(RestoreError::StoreAhead { store: at, end }) => {
                tracing::warn!(
                    partition,
                    at,
                    end,
                    "local store is from another history; rebuilding it"
                );
                drop(store);
                PartitionStore::destroy(&path, options)?;
                let store = self.registry.stores.open(&path, options)?;
                restore(&store)?;
                Ok(store)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Gives up partitions; their in-flight work must be committed or aborted first.
    pub(crate) fn release(&mut self, partitions: &[i32]) {
        for partition in partitions {
            self.tasks.remove(partition);
            self.registry.remove(*partition);
            self.registry.standbys.release(*partition);
            tracing::info!(topic = %self.config.topics.events, partition, "partition released");
        }
    }

    /// The consumer reached the end of a partition's committed input: the
    /// fold is past its last transaction marker too.
    pub(crate) fn reached_end<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        partition: i32,
    ) {
        let Some(task) = self.tasks.get(&partition) else {
            return;
        };
        // Only an end beyond the records folded: a rewind's seek may still
        // be on its way.
        if let Some(end) = consumer_position(consumer, &self.config.topics.events, partition)
            .filter(|&end| end >= task.position)
        {
            task.handle.reached_end(end);
        }
    }

    /// Partitions lost without a clean revoke: their open transaction must not commit.
    pub(crate) fn abort_lost(&mut self, partitions: &[i32]) {
        if self.in_transaction {
            self.in_transaction = false;
            if let Err(error) = self.producer.abort() {
                tracing::warn!(%error, "abort after losing partitions failed");
            }
        }
        for task in self.tasks.values_mut() {
            task.pending.clear();
            task.outcomes.clear();
            task.handle.rewind(task.position);
            task.position = task.committed.input;
        }
        self.release(partitions);
    }

    /// This member is gone: its open transaction is aborted and every
    /// partition released.
    pub(crate) fn abort_all(&mut self) {
        let owned = self.owned();
        self.abort_lost(&owned);
    }

    /// The owned partitions.
    pub(crate) fn owned(&self) -> Vec<i32> {
        self.tasks.keys().copied().collect()
    }
}
