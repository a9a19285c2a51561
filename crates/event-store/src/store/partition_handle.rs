//! One owned partition: its store, how far it has committed, what the open
//! transaction has folded beyond that, and the waits of readers on its
//! progress. The processor thread writes it; HTTP handlers read it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use super::{Encoded, PartitionStore, StoreError};

/// Where an owned partition is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PartitionStatus {
    /// Catching up from the changelog; queries wait or get a 503.
    Restoring,
    /// Folding new events.
    Running,
    /// Halted on a record it must not skip; the reason says which.
    Stopped {
        /// What happened, for operators.
        reason: String,
    },
}

/// One owned partition: its store, how far it has committed, and what the
/// open transaction has folded beyond that.
///
/// Reads see the folded state, committed or not. That is safe because the
/// processor only folds committed input (`read_committed`) and the fold is
/// deterministic: if the open transaction aborts, folding the same records
/// again reaches the same states and verdicts. So a writer learns its
/// verdict as soon as its command is folded, not a commit interval later.
///
/// The price: answers may have reflected more than is committed. After a
/// rewind, or after a takeover from an owner that crashed, the store is
/// behind what earlier answers showed, so reads first wait for the fold to
/// reach [`PartitionHandle::settled`] again: an accepted write is never
/// followed by a read that does not show it.
pub struct PartitionHandle {
    /// The partition number.
    pub partition: i32,
    /// Its store; holds committed data only.
    pub store: Arc<PartitionStore>,
    committed: AtomicI64,
    /// The next input offset folded; readers wait on it.
    folded: watch::Sender<i64>,
    /// The open transaction's results, until the store has them.
    staged: Mutex<Staged>,
    /// Input that earlier answers may have reflected; reads wait for the
    /// fold to pass it.
    settled: AtomicI64,
    /// No longer owned here: waiting readers give up and let the caller retry.
    released: AtomicBool,
    /// The input's last stable offset: the end a `read_committed` fold can reach.
    stable_end: AtomicI64,
    /// The input's high watermark, open transactions' records included.
    log_end: AtomicI64,
    status: Mutex<PartitionStatus>,
}

/// Results folded in the open transaction, by aggregate and by command.
#[derive(Default)]
struct Staged {
    /// The next input offset these results cover.
    folded: i64,
    snapshots: HashMap<Uuid, Encoded>,
    outcomes: HashMap<Uuid, Encoded>,
}

/// A read of the folded state: what was found, and the input it reflects.
pub struct FoldedRead {
    /// The encoded snapshot or outcome, if there is one.
    pub value: Option<Encoded>,
    /// The next input offset the read reflects.
    pub folded: i64,
}

impl PartitionHandle {
    /// A handle for a store whose data reflects input up to `committed`.
    pub fn new(partition: i32, store: Arc<PartitionStore>, committed: i64) -> Self {
        Self {
            partition,
            store,
            committed: AtomicI64::new(committed),
            folded: watch::Sender::new(committed),
            staged: Mutex::new(Staged {
                folded: committed,
                ..Staged::default()
            }),
            settled: AtomicI64::new(committed),
            released: AtomicBool::new(false),
            stable_end: AtomicI64::new(committed),
            log_end: AtomicI64::new(committed),
            status: Mutex::new(PartitionStatus::Running),
        }
    }

    fn staged(&self) -> std::sync::MutexGuard<'_, Staged> {
        self.staged.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next input offset whose effects are not yet committed here.
    pub fn committed(&self) -> i64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// The next input offset not yet folded here.
    pub fn folded(&self) -> i64 {
        *self.folded.borrow()
    }

    /// Makes an aggregate's new snapshot, and the outcome of the command
    /// that made it, readable before they are committed.
    pub fn stage(&self, aggregate_id: Uuid, snapshot: Encoded, command_id: Uuid, outcome: Encoded) {
        let mut staged = self.staged();
        staged.snapshots.insert(aggregate_id, snapshot);
        staged.outcomes.insert(command_id, outcome);
    }

    /// Records that the input before `next_offset` is folded, and wakes the waiters.
    pub fn set_folded(&self, next_offset: i64) {
        self.staged().folded = next_offset;
        self.folded.send_replace(next_offset);
    }

    /// The fold reached the input's end, `end`: past the last record, and
    /// past the transaction marker after it, which no record stands for.
    pub fn reached_end(&self, end: i64) {
        let mut staged = self.staged();
        if end > staged.folded {
            staged.folded = end;
            self.folded.send_replace(end);
        }
        drop(staged);
        // Fresher than the statistics, which come a second apart.
        self.set_ends(end, end);
    }

    /// Reads wait until the fold has passed `offset` (the input's end when a
    /// crashed owner's partition was taken over: that owner may have
    /// answered for any of it).
    pub fn settle_at(&self, offset: i64) {
        self.settled.fetch_max(offset, Ordering::Relaxed);
    }

    /// The input a read must see folded first: all that earlier answers may
    /// have reflected.
    pub fn settled(&self) -> i64 {
        self.settled.load(Ordering::Relaxed)
    }

    /// The offset a read waits past before it answers: the one it asked
    /// for, if any, and the last one earlier answers may have reflected.
    pub fn read_after(&self, asked: Option<i64>) -> i64 {
        asked.unwrap_or(-1).max(self.settled() - 1)
    }

    /// The store has the open transaction's results now: forgets the staged copies.
    pub fn set_committed(&self, next_offset: i64) {
        self.committed.store(next_offset, Ordering::Relaxed);
        let mut staged = self.staged();
        staged.snapshots.clear();
        staged.outcomes.clear();
    }

    /// The open transaction was aborted: back to what is committed (folding
    /// the same records again reaches the same results). Reads wait until
    /// the fold is back at `refold_to`, the record position answers reached.
    pub fn rewind(&self, refold_to: i64) {
        self.settle_at(refold_to);
        let committed = self.committed();
        let mut staged = self.staged();
        staged.snapshots.clear();
        staged.outcomes.clear();
        staged.folded = committed;
        drop(staged);
        self.folded.send_replace(committed);
    }

    /// An aggregate's folded snapshot.
    pub fn snapshot(&self, id: &Uuid) -> Result<FoldedRead, StoreError> {
        self.read(id, |staged| &staged.snapshots, PartitionStore::snapshot)
    }

    /// The folded outcome of a recent command.
    pub fn outcome(&self, command_id: &Uuid) -> Result<FoldedRead, StoreError> {
        self.read(
            command_id,
            |staged| &staged.outcomes,
            PartitionStore::outcome,
        )
    }

    fn read(
        &self,
        id: &Uuid,
        staged_in: impl Fn(&Staged) -> &HashMap<Uuid, Encoded>,
        stored: impl Fn(&PartitionStore, &Uuid) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<FoldedRead, StoreError> {
        let (value, folded) = {
            let staged = self.staged();
            (staged_in(&staged).get(id).cloned(), staged.folded)
        };
        // Not staged: never folded in the open transaction, or committed
        // (the store is written before the staged copy is dropped).
        let value = match value {
            Some(value) => Some(value),
            None => stored(&self.store, id)?.map(Encoded::from),
        };
        Ok(FoldedRead { value, folded })
    }

    /// Records not folded yet: from the folded position to the end a
    /// `read_committed` consumer can reach. Both count the last
    /// transaction's commit marker once the fold has reached the end, so a
    /// partition with nothing left to do reads 0, not 1.
    pub fn lag(&self) -> i64 {
        let folded = self.folded().max(self.committed());
        (self.stable_end() - folded).max(0)
    }

    /// The input's end a `read_committed` fold can reach (its last stable
    /// offset), as last seen.
    pub fn stable_end(&self) -> i64 {
        self.stable_end.load(Ordering::Relaxed)
    }

    /// The input's high watermark, as last seen: beyond the stable end while
    /// a transaction is open on the partition.
    pub fn log_end(&self) -> i64 {
        self.log_end.load(Ordering::Relaxed)
    }

    /// Records the input's ends as seen: the last stable offset and the
    /// high watermark. They only move forward: statistics taken before the
    /// fold reached the end must not take back the end it saw.
    pub fn set_ends(&self, stable: i64, log: i64) {
        self.stable_end.fetch_max(stable, Ordering::Relaxed);
        self.log_end.fetch_max(log.max(stable), Ordering::Relaxed);
    }

    /// The partition's state.
    pub fn status(&self) -> PartitionStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or(PartitionStatus::Restoring)
    }

    /// Changes the partition's state.
    pub fn set_status(&self, status: PartitionStatus) {
        if let Ok(mut current) = self.status.lock() {
            *current = status;
        }
    }

    /// Notified whenever the folded position moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.folded.subscribe()
    }

    /// The partition is no longer owned here: wakes every waiting reader,
    /// so none holds the store open for the rest of its wait.
    pub fn release(&self) {
        self.released.store(true, Ordering::Relaxed);
        self.folded.send_modify(|_| ());
    }

    /// True once the partition is no longer owned here.
    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::Relaxed)
    }

    /// Waits until the input up to and including `offset` is folded here.
    pub async fn wait_past(&self, offset: i64, timeout: Duration) -> Result<(), WaitError> {
        let mut progress = self.folded.subscribe();
        let reached = tokio::time::timeout(
            timeout,
            progress.wait_for(|next| *next > offset || self.is_released()),
        )
        .await;
        match reached {
            _ if self.is_released() => Err(WaitError::Released),
            Ok(_) => Ok(()),
            Err(_elapsed) => Err(WaitError::TimedOut {
                folded: self.folded(),
            }),
        }
    }
}

/// Why a wait for an offset ended without it.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The bound passed first.
    #[error("offset not reached in time; folded up to {folded}")]
    TimedOut {
        /// How far the partition had folded.
        folded: i64,
    },
    /// The partition was revoked while waiting.
    #[error("the partition was reassigned while waiting")]
    Released,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CommittedWrites, Positions, StoreOptions};

    fn handle() -> PartitionHandle {
        let path = std::env::temp_dir().join(format!("handle-test-{}", Uuid::now_v7()));
        let store = PartitionStore::open(&path, &StoreOptions::new(1 << 20)).expect("open");
        PartitionHandle::new(0, Arc::new(store), 0)
    }

    /// What a snapshot read and an outcome read find, and where they stand.
    type Reads = ((Option<Vec<u8>>, i64), (Option<Vec<u8>>, i64));

    fn reads(handle: &PartitionHandle, order: &Uuid, command: &Uuid) -> Reads {
        let plain = |read: FoldedRead| (read.value.map(|v| v.to_vec()), read.folded);
        (
            plain(handle.snapshot(order).unwrap()),
            plain(handle.outcome(command).unwrap()),
        )
    }

    #[test]
    fn staged_results_are_read_until_rewound_or_committed() {
        let handle = handle();
        let (order, command) = (Uuid::now_v7(), Uuid::now_v7());
        let (snapshot, outcome) = (Encoded::from(&b"s1"[..]), Encoded::from(&b"o1"[..]));
        let found = ((Some(b"s1".to_vec()), 1), (Some(b"o1".to_vec()), 1));

        handle.stage(order, snapshot.clone(), command, outcome.clone());
        handle.set_folded(1);
        assert_eq!(reads(&handle, &order, &command), found);
        assert_eq!((handle.folded(), handle.committed()), (1, 0));

        assert_eq!(handle.read_after(None), -1, "nothing to wait for yet");
        handle.rewind(1);
        assert_eq!(reads(&handle, &order, &command), ((None, 0), (None, 0)));
        assert_eq!(
            handle.read_after(None),
            0,
            "reads wait until offset 0 is folded again"
        );
        assert_eq!(handle.read_after(Some(5)), 5);

        handle.stage(order, snapshot.clone(), command, outcome.clone());
        handle.set_folded(1);
        handle
            .store
            .apply(CommittedWrites {
                snapshots: vec![(order, snapshot)],
                outcomes: vec![(command, outcome)],
                positions: Positions {
                    input: 1,
                    changelog: 1,
                },
            })
            .unwrap();
        handle.set_committed(1);
        // From the store now; a rewind goes back to the commit, not before it.
        handle.rewind(1);
        assert_eq!(reads(&handle, &order, &command), found);
    }

    #[test]
    fn a_taken_over_partition_is_read_once_the_fold_reaches_the_end() {
        let handle = handle();
        // The input's end when the partition was taken over: the last
        // record is offset 2, its transaction marker offset 3.
        handle.settle_at(4);
        assert_eq!(handle.read_after(None), 3);
        handle.set_folded(3);
        assert!(
            handle.folded() <= handle.read_after(None),
            "one marker short"
        );
        handle.reached_end(4);
        assert!(handle.folded() > handle.read_after(None));
        // An end behind the fold (a stale one) moves nothing back.
        handle.reached_end(2);
        assert_eq!(handle.folded(), 4);
    }

    #[test]
    fn the_ends_move_forward_only_and_reaching_the_end_refreshes_them() {
        let handle = handle();
        // Statistics while a transaction is open: the stable end lags the log's.
        handle.set_ends(10, 12);
        assert_eq!(
            (handle.stable_end(), handle.log_end(), handle.lag()),
            (10, 12, 10)
        );
        // The fold reaches an end past what the last statistics said.
        handle.set_folded(13);
        handle.reached_end(14);
        assert_eq!(
            (handle.stable_end(), handle.log_end(), handle.lag()),
            (14, 14, 0)
        );
        // Statistics taken before that take nothing back.
        handle.set_ends(10, 12);
        assert_eq!(
            (handle.stable_end(), handle.log_end(), handle.lag()),
            (14, 14, 0)
        );
        handle.set_ends(20, 25);
        assert_eq!(
            (handle.stable_end(), handle.log_end(), handle.lag()),
            (20, 25, 6)
        );
    }
}
