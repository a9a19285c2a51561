//! The transactional core of the processor: folds records into per-partition
//! in-flight state, and commits that state's outputs with the consumed
//! offsets in one Kafka transaction.
//!
//! Nothing reaches RocksDB before Kafka has committed: in-flight snapshots
//! live in memory, and are written (atomically with the new positions) only
//! after `commit_transaction` succeeded. An abort, a fenced producer or a lost
//! partition drops them and rewinds the consumer to the committed offsets, so
//! the local store can never keep an aborted write.
//!
//! Layout: this module folds records; `commit` commits the open
//! transaction (or recovers from a failed one); `ownership` takes
//! partitions over and lets them go; `stall` notices a partition the
//! consumer stopped fetching.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use domain::aggregate::{
    Aggregate, CommandBatch, DecodeError, Envelope, EnvelopeBytes, EventPayload, Snapshot, Verdict,
};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use uuid::Uuid;

use super::{CommandOutcome, ProcessorConfig, ProcessorError};
use crate::positions::consumer_position;
use crate::store::{
    CommittedWrites, Encoded, PartitionHandle, PartitionStatus, PartitionStore, Positions,
    Registry, RestoreError, Restored, restore_partition, store_path,
};
use crate::trace_context::hop::{self, Hop};
use crate::trace_context::{TRACEPARENT, TraceParent};
use crate::transaction::{OutgoingRecord, TransactionalProducer, TxError, TxErrorKind};
use opentelemetry::KeyValue;

mod commit;
mod ownership;
mod stall;

pub(crate) use stall::Stall;

/// How long a seek back to the committed offsets may take.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a takeover waits for the committed offsets: a crashed owner's
/// open transaction holds them until the transaction times out.
const COMMITTED_OFFSETS_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a metadata request (watermarks) may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// One owned partition's in-flight state.
struct Task<S> {
    handle: Arc<PartitionHandle>,
    /// The next input offset whose effects are committed.
    committed: Positions,
    /// The next input offset after the records folded in the open transaction.
    position: i64,
    /// Snapshots changed in the open transaction (and their encoding), by
    /// aggregate id.
    pending: HashMap<Uuid, (Snapshot<S>, Encoded)>,
    /// Outcomes of the commands folded in the open transaction.
    outcomes: Vec<(Uuid, Encoded)>,
    stopped: bool,
    /// Where the consumer's position last moved (see `stall`).
    progress: stall::Progress,
}

/// The processor's state, behind the consumer context's lock.
pub(crate) struct Fold<A: Aggregate> {
    config: Arc<ProcessorConfig>,
    producer: TransactionalProducer,
    registry: Arc<Registry>,
    tasks: BTreeMap<i32, Task<A::State>>,
    in_transaction: bool,
    /// An error raised inside a rebalance callback, for the poll loop to return.
    pub(crate) failure: Option<ProcessorError>,
}

impl<A: Aggregate> Fold<A> {
    pub(crate) fn new(
        config: Arc<ProcessorConfig>,
        producer: TransactionalProducer,
        registry: Arc<Registry>,
    ) -> Self {
        Self {
            config,
            producer,
            registry,
            tasks: BTreeMap::new(),
            in_transaction: false,
            failure: None,
        }
    }

    fn begin(&mut self) -> Result<(), ProcessorError> {
        if !self.in_transaction {
            self.producer.begin()?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Folds one record of the events topic into the open transaction.
    pub(crate) fn fold_record<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        message: &BorrowedMessage<'_>,
    ) -> Result<(), ProcessorError> {
        let (partition, offset) = (message.partition(), message.offset());
        let Some(task) = self.tasks.get(&partition) else {
            return Ok(());
        };
        // Records from before a rewind's seek may still arrive once.
        if task.stopped || offset < task.position {
            return Ok(());
        }
        let trace = message.headers().and_then(|headers| {
            TraceParent::from_headers(headers.iter().filter_map(|h| Some((h.key, h.value?))))
        });
        let span = tracing::debug_span!(
            "fold",
            partition,
            offset,
            trace_id = trace.map(|t| t.trace_id_hex()),
        );
        let _entered = span.enter();
        let key = message.key().unwrap_or_default();
        let payload = message.payload().unwrap_or_default();
        match decode_keeping_bytes::<A>(key, payload) {
            Ok((batch, bytes)) => self.fold_batch(partition, offset, key, &batch, &bytes, trace)?,
            Err(error) if error.needs_newer_code() => {
                self.stop_partition(consumer, partition, offset, &error);
                return Ok(());
            }
            Err(error) => {
                self.begin()?;
                let reason = error.to_string();
                tracing::warn!(%reason, "poison record sent to the dead-letter topic");
                let (source_partition, source_offset) = (partition.to_string(), offset.to_string());
                self.producer.send(OutgoingRecord {
                    topic: &self.config.topics.events_dlq,
                    key,
                    payload,
                    headers: &[
                        ("dlq.reason", reason.as_bytes()),
                        ("dlq.topic", self.config.topics.events.as_bytes()),
                        ("dlq.partition", source_partition.as_bytes()),
                        ("dlq.offset", source_offset.as_bytes()),
                    ],
                })?;
                self.registry
                    .metrics
                    .dead_lettered
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(task) = self.tasks.get_mut(&partition) {
            task.position = offset + 1;
            task.handle.set_folded(task.position);
        }
        self.registry
            .metrics
            .records
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn fold_batch(
        &mut self,
        partition: i32,
        offset: i64,
        key: &[u8],
        batch: &CommandBatch<A::Event>,
        envelope_bytes: &[Option<&[u8]>],
        trace: Option<TraceParent>,
    ) -> Result<(), ProcessorError> {
        self.begin()?;
        // This fold's span of the command's trace; its ids go on the changes
        // records. Unexported, they derive from the command id, so folding
        // the record again after an abort names the same span.
        let mut hop = trace.map(|trace| {
            Hop::start(
                hop::Kind::Consumer,
                Some(&trace),
                || trace.child_for(&batch.command_id(), 0),
                || self.fold_span(partition, offset, key, batch),
            )
        });
        let Some(task) = self.tasks.get_mut(&partition) else {
            return Ok(());
        };
        let id = batch.aggregate_id();
        let snapshot = match task.pending.remove(&id) {
            Some((snapshot, _)) => snapshot,
            None => load_snapshot(&task.handle.store, &id)?,
        };
        let mut changes = Vec::new();
        let first_version = batch.first_version();
        let (next, verdict) = snapshot.apply_observing::<A>(batch, |envelope, state| {
            let index = (envelope.version - first_version) as usize;
            let bytes = envelope_bytes.get(index).copied().flatten();
            changes.push((
                envelope.event.event_type(),
                encode_change(A::TYPE, envelope, bytes, state),
            ));
        });
        // The state after the last accepted event is the new snapshot's:
        // encoded once, for its change record, and spliced in here.
        let encoded = match changes.last() {
            Some((_, Ok(change))) => next.encode_with_state(change.state())?,
            _ => serde_json::to_vec(&next)?,
        };
        let encoded = Encoded::from(encoded);
        task.pending.insert(id, (next, encoded.clone()));
        let outcome = CommandOutcome {
            aggregate_id: id,
            partition,
            offset,
            verdict,
        };
        let outcome = Encoded::from(serde_json::to_vec(&outcome)?);
        task.outcomes.push((batch.command_id(), outcome.clone()));
        task.handle.stage(id, encoded, batch.command_id(), outcome);
        tracing::debug!(aggregate_id = %id, command_id = %batch.command_id(), ?verdict, "judged");
        if let Some(hop) = &mut hop {
            hop.set_attribute(|| KeyValue::new("command.verdict", verdict.name()));
        }

        // The trace goes on: this fold is a span of the command's trace,
        // the parent of what consumes the changes.
        let traceparent = hop.as_ref().map(|hop| hop.trace().to_string());
        for (event_type, change) in &changes {
            let headers = [
                ("event_type", event_type.as_bytes()),
                (
                    TRACEPARENT,
                    traceparent.as_deref().unwrap_or_default().as_bytes(),
                ),
            ];
            self.producer.send(OutgoingRecord {
                topic: &self.config.topics.changes,
                key,
                payload: change
                    .as_ref()
                    .map_err(|e| ProcessorError::Encode(e.to_string()))?
                    .bytes(),
                headers: &headers[..if traceparent.is_some() { 2 } else { 1 }],
            })?;
        }
        let metrics = &self.registry.metrics;
        match verdict {
            Verdict::Accepted { .. } => {
                metrics.accepted.fetch_add(1, Ordering::Relaxed);
                metrics
                    .events
                    .fetch_add(changes.len() as u64, Ordering::Relaxed);
            }
            Verdict::Conflict { .. } => _ = metrics.conflicts.fetch_add(1, Ordering::Relaxed),
            Verdict::Duplicate => _ = metrics.duplicates.fetch_add(1, Ordering::Relaxed),
        }
        Ok(())
    }

    /// The fold span's name and attributes, by OpenTelemetry's messaging
    /// conventions.
    fn fold_span(
        &self,
        partition: i32,
        offset: i64,
        key: &[u8],
        batch: &CommandBatch<A::Event>,
    ) -> (String, Vec<KeyValue>) {
        let topic = &self.config.topics.events;
        let mut attributes = hop::processing(topic, partition, &self.config.group_id);
        attributes.extend([
            KeyValue::new("messaging.kafka.offset", offset),
            KeyValue::new(
                "messaging.kafka.message.key",
                String::from_utf8_lossy(key).into_owned(),
            ),
            KeyValue::new("command.id", batch.command_id().to_string()),
        ]);
        (format!("process {topic}"), attributes)
    }

    /// A record only newer code can read: skipping it would corrupt state, so
    /// the partition halts here (the others go on) until the code is upgraded.
    fn stop_partition<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        partition: i32,
        offset: i64,
        error: &DecodeError,
    ) {
        let reason = format!("offset {offset}: {error}");
        tracing::error!(partition, %reason, "partition stopped: upgrade the code to continue");
        let mut paused = TopicPartitionList::new();
        paused.add_partition(&self.config.topics.events, partition);
        if let Err(error) = consumer.pause(&paused) {
            tracing::warn!(partition, %error, "could not pause the stopped partition");
        }
        if let Some(task) = self.tasks.get_mut(&partition) {
            task.stopped = true;
            task.handle.set_status(PartitionStatus::Stopped { reason });
        }
    }
}

/// Decodes a record of an events topic and checks that its key is the
/// aggregate's id (the key decides the partition, and so which consumer folds
/// it). Every consumer that folds the log decodes with this.
pub fn decode<A: Aggregate>(
    key: &[u8],
    payload: &[u8],
) -> Result<CommandBatch<A::Event>, DecodeError> {
    decode_keeping_bytes::<A>(key, payload).map(|(batch, _)| batch)
}

/// [`decode`], also giving each envelope's bytes where the record holds
/// them in the current schema (see [`CommandBatch::decode_keeping_bytes`]).
fn decode_keeping_bytes<'a, A: Aggregate>(
    key: &[u8],
    payload: &'a [u8],
) -> Result<(CommandBatch<A::Event>, EnvelopeBytes<'a>), DecodeError> {
    let (batch, bytes) = CommandBatch::decode_keeping_bytes(payload, A::TYPE)?;
    let mut expected = Uuid::encode_buffer();
    if key
        != batch
            .aggregate_id()
            .hyphenated()
            .encode_lower(&mut expected)
            .as_bytes()
    {
        return Err(DecodeError::Malformed(format!(
            "the record key is not the aggregate id {}",
            batch.aggregate_id()
        )));
    }
    Ok((batch, bytes))
}

fn load_snapshot<S: serde::de::DeserializeOwned + Default>(
    store: &PartitionStore,
    id: &Uuid,
) -> Result<Snapshot<S>, ProcessorError> {
    Ok(match store.snapshot(id)? {
        Some(bytes) => serde_json::from_slice(&bytes)?,
        None => Snapshot::default(),
    })
}

/// A record of the changes topic: the accepted event and the state after it.
struct Change {
    bytes: Vec<u8>,
    /// Where the state starts in `bytes` (it ends before the closing brace).
    state_at: usize,
}

impl Change {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded state after the event.
    fn state(&self) -> &[u8] {
        &self.bytes[self.state_at..self.bytes.len() - 1]
    }
}

/// Encodes a change record. The event's bytes are the input record's
/// (`read`) when it holds the current schema; an upcast one is encoded anew.
fn encode_change<E: EventPayload, S: serde::Serialize>(
    aggregate_type: &str,
    envelope: &Envelope<E>,
    read: Option<&[u8]>,
    state: &S,
) -> Result<Change, serde_json::Error> {
    let encoded;
    let event = match read {
        Some(bytes) => bytes,
        None => {
            encoded = envelope.encode(aggregate_type);
            &encoded
        }
    };
    // Spliced, not re-serialized: the envelope's bytes stay exactly the wire format.
    let mut change = Vec::with_capacity(event.len() + 512);
    change.extend_from_slice(b"{\"event\":");
    change.extend_from_slice(event);
    change.extend_from_slice(b",\"state\":");
    let state_at = change.len();
    serde_json::to_writer(&mut change, state)?;
    change.push(b'}');
    Ok(Change {
        bytes: change,
        state_at,
    })
}
