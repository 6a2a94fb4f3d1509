//! openraft's `RaftLogStorage` over a `ReplicaLog`: the partition's segment log is the Raft log.

use crate::flusher::Flusher;
use crate::replica_log::ReplicaLog;
use crate::types::{ChronikRaft, Entry, LogId, RaftStorageError, Vote};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A replica log shared by the log store, its readers and the state machine.
pub type SharedReplica = Arc<Mutex<ReplicaLog>>;

pub fn lock(replica: &SharedReplica) -> MutexGuard<'_, ReplicaLog> {
    replica.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn io_error(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: &chronik_storage::StorageError,
) -> RaftStorageError {
    StorageIOError::new(subject, verb, AnyError::new(e)).into()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A known bug the simulator plants to show that it catches it (never set by the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// Appends are reported durable without an fdatasync.
    SkipFsync,
    /// A conflicting suffix is not truncated (a deposed leader keeps its entries).
    SkipTruncate,
}

/// The log store (and log reader) of one partition replica.
#[derive(Debug, Clone)]
pub struct LogStore {
    replica: SharedReplica,
    /// The node's group commit; without one, appends are fsynced in place (tests).
    flusher: Option<Flusher>,
    planted: Option<PlantedBug>,
}

impl LogStore {
    pub fn new(replica: SharedReplica) -> Self {
        Self {
            replica,
            flusher: None,
            planted: None,
        }
    }

    /// TEST ONLY (the simulator's teeth): this store misbehaves as `bug` says.
    pub fn with_planted_bug(mut self, bug: Option<PlantedBug>) -> Self {
        self.planted = bug;
        self
    }

    /// A log store whose appends share the node's fdatasync rounds.
    pub fn with_flusher(replica: SharedReplica, flusher: Flusher) -> Self {
        Self {
            replica,
            flusher: Some(flusher),
            planted: None,
        }
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<ChronikRaft> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, RaftStorageError> {
        let (start, end) = bounds(&range);
        lock(&self.replica)
            .read(start, end)
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }
}

impl RaftLogStorage<ChronikRaft> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<ChronikRaft>, RaftStorageError> {
        let r = lock(&self.replica);
        Ok(LogState {
            last_purged_log_id: r.state().purged,
            last_log_id: r.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), RaftStorageError> {
        lock(&self.replica)
            .save_vote(*vote)
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, &e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, RaftStorageError> {
        Ok(lock(&self.replica).state().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), RaftStorageError> {
        lock(&self.replica).save_committed(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, RaftStorageError> {
        Ok(lock(&self.replica).state().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<ChronikRaft>,
    ) -> Result<(), RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let started = std::time::Instant::now();
        let (appended, last) = {
            let mut r = lock(&self.replica);
            let appended = r.append(entries, now_ms()).and_then(|outcome| {
                let file = if outcome.batches_written {
                    Some(r.active_file()?)
                } else {
                    None
                };
                Ok(file)
            });
            (appended, r.last_log_id())
        };
        let replica = Arc::clone(&self.replica);
        let mark_durable = move || {
            if let Some(last) = last {
                lock(&replica).mark_durable(last);
            }
        };
        metrics::histogram!("chronik_raft_append_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        if self.planted == Some(PlantedBug::SkipFsync) && appended.is_ok() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        match appended {
            // Batches written: durable after the next fdatasync round (or right here).
            Ok(Some((file, path))) => match &self.flusher {
                Some(flusher) => {
                    flusher.flush(file, path, callback, Box::new(mark_durable));
                    Ok(())
                }
                None => {
                    let synced = file.sync_data();
                    let failed = synced.as_ref().err().map(ToString::to_string);
                    if failed.is_none() {
                        mark_durable();
                    }
                    callback.log_io_completed(synced);
                    match failed {
                        None => Ok(()),
                        Some(e) => Err(io_error(
                            ErrorSubject::Logs,
                            ErrorVerb::Write,
                            &chronik_storage::StorageError::Corrupt {
                                path,
                                reason: format!("fdatasync failed: {e}"),
                            },
                        )),
                    }
                }
            },
            // Only Raft-only entries: already fsynced.
            Ok(None) => {
                mark_durable();
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                // Never retried: the group stops (openraft shuts the node's Raft down).
                tracing::error!(error = %e, "Raft log append failed");
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io_error(ErrorSubject::Logs, ErrorVerb::Write, &e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        if self.planted == Some(PlantedBug::SkipTruncate) {
            return Ok(());
        }
        lock(&self.replica)
            .truncate(log_id.index, now_ms())
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        lock(&self.replica)
            .purge(log_id)
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }
}
