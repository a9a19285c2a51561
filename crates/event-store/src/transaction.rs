//! A transactional producer that follows librdkafka's error rules.
//!
//! Every call here blocks the calling thread (librdkafka's transaction API is
//! synchronous): run them on a dedicated thread or `spawn_blocking`, never on an
//! async worker. Errors come classified, so callers do what librdkafka
//! prescribes: retry a retriable error, abort on an abortable one, and drop the
//! producer and build a new one on a fatal one (which includes being fenced).

use std::ffi::c_void;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::IntoOpaque;

use crate::KafkaConfig;

/// How long one transaction may stay open before the broker aborts it. Our
/// transactions last milliseconds; the bound matters when a process dies
/// with one open: until the broker aborts it, read_committed consumers of
/// its partitions stop at it, and its offsets hold back the next owner.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a retriable call (say, `init_transactions` while the broker
/// aborts a predecessor's transaction) is retried.
const RETRY_DEADLINE: Duration = Duration::from_secs(30);
/// How much longer than its own timeout a call may take before it counts as stuck.
const STUCK_CALL_GRACE: Duration = Duration::from_secs(5);

/// What the caller must do after a failed transaction call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxErrorKind {
    /// Call the same operation again.
    Retriable,
    /// Abort the transaction; the producer stays usable.
    Abortable,
    /// The producer is unusable (fenced, or another fatal error): build a new one.
    Fatal,
}

/// A failed transaction call, classified.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed ({kind:?}): {source}")]
pub struct TxError {
    /// What to do about it.
    pub kind: TxErrorKind,
    /// The librdkafka call that failed.
    pub operation: &'static str,
    /// librdkafka's error code, when it has one.
    pub code: Option<RDKafkaErrorCode>,
    /// The underlying error.
    #[source]
    pub source: KafkaError,
}

impl TxError {
    /// True when another producer with the same transactional id took over.
    pub fn is_fenced(&self) -> bool {
        matches!(
            self.code,
            Some(
                RDKafkaErrorCode::Fenced
                    | RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
            )
        )
    }
}

/// One record to append inside a transaction.
#[derive(Clone, Copy, Debug)]
pub struct OutgoingRecord<'a> {
    /// Target topic.
    pub topic: &'a str,
    /// Partitioning key (the aggregate id).
    pub key: &'a [u8],
    /// The serialized value.
    pub payload: &'a [u8],
    /// Headers, such as the event type or a DLQ reason.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// Where an appended record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The partition.
    pub partition: i32,
    /// The record's offset in that partition.
    pub offset: i64,
}

/// Where a tracked record landed, once the broker acknowledged it (at the
/// latest when the transaction commits). Acknowledged is not committed: only
/// a successful [`TransactionalProducer::commit`] makes the record visible
/// to readers.
pub struct PendingAppend(DeliverySlot);

/// Where a tracked record's delivery report lands.
type DeliverySlot = Arc<OnceLock<Result<Appended, KafkaError>>>;

impl PendingAppend {
    /// The result if it is already known, without waiting: after a successful
    /// [`TransactionalProducer::commit`] it always is (a commit waits for
    /// every record's delivery report first).
    pub fn completed(self) -> Option<Result<Appended, KafkaError>> {
        self.0.get().cloned()
    }
}

/// A record's delivery report slot: none for the records whose place
/// nobody asks for, so most records cost no allocation and no
/// synchronization when their report comes back (a failed one fails the
/// transaction anyway).
struct Tracker(Option<DeliverySlot>);

impl IntoOpaque for Tracker {
    fn into_ptr(self) -> *mut c_void {
        self.0.map_or(std::ptr::null_mut(), |slot| {
            Arc::into_raw(slot) as *mut c_void
        })
    }

    unsafe fn from_ptr(ptr: *mut c_void) -> Self {
        // SAFETY: `ptr` came from `into_ptr` (librdkafka hands each opaque
        // back once): null, or an `Arc` it leaked.
        Tracker((!ptr.is_null()).then(|| unsafe { Arc::from_raw(ptr as *const _) }))
    }
}

/// The producer's context: fills the slots of tracked records.
struct Deliveries;

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Tracker;

    fn delivery(&self, delivered: &DeliveryResult<'_>, tracker: Tracker) {
        let Some(slot) = tracker.0 else {
            return;
        };
        let result = match delivered {
            Ok(message) => Ok(Appended {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((error, _message)) => Err(error.clone()),
        };
        let _ = slot.set(result);
    }
}

/// The librdkafka producer underneath: its own thread serves the delivery
/// reports.
type Client = ThreadedProducer<Deliveries>;

/// A producer whose writes become visible all together or not at all.
pub struct TransactionalProducer {
    /// Shared with the thread of a `send_offsets` call.
    producer: Arc<Client>,
    transactional_id: String,
    /// How long a transaction may stay open before the broker aborts it.
    timeout: Duration,
}

impl TransactionalProducer {
    /// Connects and registers `transactional_id` with the transaction
    /// coordinator, which fences any older producer with the same id and
    /// aborts what it left open.
    pub fn new(config: &KafkaConfig, transactional_id: &str) -> Result<Self, TxError> {
        Self::with_timeout(config, transactional_id, TRANSACTION_TIMEOUT)
    }

    /// [`Self::new`] with another transaction timeout (see [`TRANSACTION_TIMEOUT`]).
    pub fn with_timeout(
        config: &KafkaConfig,
        transactional_id: &str,
        timeout: Duration,
    ) -> Result<Self, TxError> {
        // Below the transaction timeout, or a stuck record outlives its transaction.
        let message_timeout = timeout * 4 / 5;
        let mut client_config = config.client_config();
        client_config
            .set("transactional.id", transactional_id)
            .set("enable.idempotence", "true")
            .set("transaction.timeout.ms", timeout.as_millis().to_string())
            .set(
                "message.timeout.ms",
                message_timeout.as_millis().to_string(),
            )
            .set("linger.ms", "2")
            // Java's default partitioner, so `partition_for_key` agrees with it.
            .set("partitioner", "murmur2_random")
            .set("compression.type", "lz4");
        let producer = Client::from_config_and_context(&client_config, Deliveries)
            .map_err(|e| classify("create producer", e, None))?;
        let this = Self {
            producer: Arc::new(producer),
            transactional_id: transactional_id.to_owned(),
            timeout,
        };
        this.retrying("init_transactions", |p, t| p.init_transactions(t))?;
        Ok(this)
    }

    /// The id this producer registered.
    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    /// Opens a transaction.
    pub fn begin(&self) -> Result<(), TxError> {
        self.producer
            .begin_transaction()
            .map_err(|e| self.error("begin_transaction", e))
    }

    /// Enqueues a record in the open transaction.
    pub fn send(&self, record: OutgoingRecord<'_>) -> Result<(), TxError> {
        self.enqueue(record, Tracker(None))
    }

    /// Enqueues a record in the open transaction, and tells where it landed.
    pub fn send_tracked(&self, record: OutgoingRecord<'_>) -> Result<PendingAppend, TxError> {
        let slot = Arc::new(OnceLock::new());
        self.enqueue(record, Tracker(Some(slot.clone())))?;
        Ok(PendingAppend(slot))
    }

    fn enqueue(&self, record: OutgoingRecord<'_>, tracker: Tracker) -> Result<(), TxError> {
        let headers = record
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(*value),
                })
            });
        let base_record = BaseRecord::with_opaque_to(record.topic, tracker)
            .key(record.key)
            .payload(record.payload)
            .headers(headers);
        self.producer
            .send(base_record)
            // A record that could not even be enqueued leaves the transaction
            // incomplete: abort it rather than commit a part.
            .map_err(|(error, _record)| TxError {
                kind: TxErrorKind::Abortable,
                ..self.error("send", error)
            })
    }

    /// Adds consumed offsets to the open transaction, fenced by the consumer
    /// group's generation (a zombie from before a rebalance cannot commit).
    ///
    /// librdkafka's call can block past its timeout, for good, when the group
    /// coordinator it cached was on a broker that left the cluster
    /// (librdkafka#5456, #5511). So it runs on a thread of its own; if it has
    /// not returned in time the error is fatal: the caller replaces this
    /// producer, whose successor fences it, and the stuck thread ends with
    /// the call, if ever.
    pub(crate) fn send_offsets(
        &self,
        offsets: TopicPartitionList,
        group: ConsumerGroupMetadata,
    ) -> Result<(), TxError> {
        const OPERATION: &str = "send_offsets_to_transaction";
        // Past the transaction timeout the broker aborts the transaction
        // anyway: no point waiting longer.
        let bound = self.timeout.min(RETRY_DEADLINE);
        let producer = self.producer.clone();
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let call = move || {
            let result = retry_until(&producer, OPERATION, Instant::now() + bound, |p, t| {
                p.send_offsets_to_transaction(&offsets, &group, t)
            });
            // The caller may have given up waiting; then nobody listens.
            let _ = answer.send(result);
        };
        std::thread::Builder::new()
            .name("send-offsets".into())
            .spawn(call)
            .map_err(|error| {
                tracing::warn!(%error, "no thread for {OPERATION}");
                TxError {
                    kind: TxErrorKind::Abortable,
                    operation: OPERATION,
                    code: None,
                    source: KafkaError::Global(RDKafkaErrorCode::Fail),
                }
            })?;
        match answered.recv_timeout(bound + STUCK_CALL_GRACE) {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(
                    transactional_id = %self.transactional_id,
                    "{OPERATION} did not return; replacing the producer"
                );
                Err(TxError {
                    kind: TxErrorKind::Fatal,
                    operation: OPERATION,
                    code: Some(RDKafkaErrorCode::OperationTimedOut),
                    source: KafkaError::Global(RDKafkaErrorCode::OperationTimedOut),
                })
            }
        }
    }

    /// Commits the open transaction, retrying retriable failures within the
    /// transaction timeout. On an abortable error, call [`Self::abort`].
    pub fn commit(&self) -> Result<(), TxError> {
        self.retrying("commit_transaction", |p, t| {
            wait_delivered(p, t)?;
            p.commit_transaction(t)
        })
    }

    /// Aborts the open transaction: none of its records will ever be read by a
    /// `read_committed` consumer.
    pub fn abort(&self) -> Result<(), TxError> {
        self.retrying("abort_transaction", |p, t| p.abort_transaction(t))
    }

    /// Commits, or aborts when the commit failed abortably; returns the error
    /// that ended the transaction.
    pub fn commit_or_abort(&self) -> Result<(), TxError> {
        match self.commit() {
            Err(error) if error.kind == TxErrorKind::Abortable => {
                tracing::warn!(%error, transactional_id = %self.transactional_id, "aborting transaction");
                self.abort()?;
                Err(error)
            }
            other => other,
        }
    }

    fn retrying(
        &self,
        operation: &'static str,
        call: impl Fn(&Client, Duration) -> Result<(), KafkaError>,
    ) -> Result<(), TxError> {
        retry_until(
            &self.producer,
            operation,
            Instant::now() + RETRY_DEADLINE,
            call,
        )
    }

    fn error(&self, operation: &'static str, error: KafkaError) -> TxError {
        classify(operation, error, self.producer.client().fatal_error())
    }
}

/// Calls `call` (with the time left) until it succeeds, fails other than
/// retriably, or `deadline` passes.
fn retry_until(
    producer: &Client,
    operation: &'static str,
    deadline: Instant,
    call: impl Fn(&Client, Duration) -> Result<(), KafkaError>,
) -> Result<(), TxError> {
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Err(error) = call(producer, remaining) else {
            return Ok(());
        };
        let error = classify(operation, error, producer.client().fatal_error());
        if error.kind != TxErrorKind::Retriable || Instant::now() >= deadline {
            return Err(error);
        }
        tracing::debug!(%error, "retrying");
    }
}

/// Waits until the broker has acknowledged every record sent so far.
///
/// `commit_transaction` flushes too, but the client's flush polls in fixed
/// 100 ms slices while any record is outstanding, which put a 100 ms floor
/// under every transaction. librdkafka's own flush waits on a condition
/// variable for the producer's polling thread to serve the delivery reports,
/// so it returns as soon as the last acknowledgement is in; after it the
/// client's flush finds nothing outstanding and returns at once.
fn wait_delivered(producer: &Client, timeout: Duration) -> Result<(), KafkaError> {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the pointer is the live handle of `producer`, borrowed for the
    // whole call; `rd_kafka_flush` may be called from any thread.
    let code =
        unsafe { rdkafka::bindings::rd_kafka_flush(producer.client().native_ptr(), timeout_ms) };
    match RDKafkaErrorCode::from(code) {
        RDKafkaErrorCode::NoError => Ok(()),
        code => Err(KafkaError::Flush(code)),
    }
}

/// Sorts an error into librdkafka's three classes. A producer that has hit a
/// fatal error is unusable whatever the failing call says.
fn classify(
    operation: &'static str,
    source: KafkaError,
    fatal: Option<(RDKafkaErrorCode, String)>,
) -> TxError {
    let (kind, code) = match (&source, fatal) {
        (_, Some((code, _reason))) => (TxErrorKind::Fatal, Some(code)),
        (KafkaError::Transaction(e), None) => {
            let kind = if e.is_fatal() {
                TxErrorKind::Fatal
            } else if e.txn_requires_abort() {
                TxErrorKind::Abortable
            } else if e.is_retriable() {
                TxErrorKind::Retriable
            } else {
                TxErrorKind::Abortable
            };
            (kind, Some(e.code()))
        }
        // commit_transaction flushes first; a flush that timed out may be retried.
        (KafkaError::Flush(code), None) => (TxErrorKind::Retriable, Some(*code)),
        (other, None) => (TxErrorKind::Abortable, other.rdkafka_error_code()),
    };
    TxError {
        kind,
        operation,
        code,
        source,
    }
}
