//! The partition's Raft state machine. The data is the log itself, so applying a committed
//! entry only moves the high watermark (the commit point, translated to a Kafka offset) and
//! answers the offsets the batch got; the applied state at start-up is the last known commit.
//!
//! A snapshot carries the Kafka offset where its entries end and the producer and transaction
//! state of every batch below it (`StateSnapshot`): it stands for "every entry up to here", and
//! the log keeps those entries until retention deletes them, as Kafka does. A replica that
//! installs one without having those entries starts its log over at that offset, with that
//! producer state, so it decides retries and fencing as the others do.
//!
//! Snapshot data: the end offset (8 bytes, big-endian), then the producer state (JSON,
//! docs/formats/producer-state.md); 8 bytes alone is a snapshot without producer state.

use crate::log_store::{io_error, lock, now_ms, SharedReplica};
use crate::replica_log::ReplicaLog;
use crate::types::{Applied, ChronikRaft, Entry, LogId, RaftStorageError, StoredMembership};
use chronik_storage::state_snapshot::StateSnapshot;
use chronik_storage::StorageError;
use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta,
};
use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

type Meta = SnapshotMeta<u64, openraft::EmptyNode>;
/// A snapshot's metadata and data (the end offset).
type Current = Option<(Meta, Vec<u8>)>;

#[derive(Debug, Clone)]
pub struct PartitionStateMachine {
    replica: SharedReplica,
    applied: Option<LogId>,
    membership: StoredMembership,
    /// The last snapshot built or installed (shared with the snapshot builders).
    snapshot: Arc<Mutex<Current>>,
    /// Woken whenever the high watermark moves (long-polling fetches wait on it).
    hw_moved: Arc<Notify>,
}

impl PartitionStateMachine {
    /// Starts from what the replica log says was committed before.
    pub fn new(replica: SharedReplica, hw_moved: Arc<Notify>) -> Self {
        let (applied, membership) = {
            let r = lock(&replica);
            let applied = r.state().committed;
            let membership = applied
                .and_then(|a| r.membership_upto(a.index))
                .map_or_else(StoredMembership::default, |(id, m)| {
                    StoredMembership::new(Some(id), m)
                });
            (applied, membership)
        };
        let snapshot = Arc::new(Mutex::new(purged_snapshot(&replica)));
        Self {
            replica,
            applied,
            membership,
            snapshot,
            hw_moved,
        }
    }

    fn current(&self) -> MutexGuard<'_, Current> {
        self.snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A snapshot ending at the entry retention planned (`ReplicaLog::snapshot_point`), or at
    /// the last applied one: the purge point that follows is then where a replica that needs
    /// the purged entries starts its log over, no later than retention wants.
    fn build(&mut self) -> Result<Snapshot<ChronikRaft>, StorageError> {
        let (meta, data) = {
            let r = lock(&self.replica);
            match r.snapshot_point().filter(|p| Some(*p) <= self.applied) {
                Some(point) => snapshot_at(&r, point)?,
                None => {
                    let end_offset = self.applied.map_or(0, |a| r.offset_after(a.index));
                    let meta = Meta {
                        last_log_id: self.applied,
                        last_membership: self.membership.clone(),
                        snapshot_id: self
                            .applied
                            .map_or_else(|| "none".to_string(), |a| a.to_string()),
                    };
                    (meta, snapshot_data(&r, end_offset)?)
                }
            }
        };
        {
            // openraft builds in the background: a snapshot installed meanwhile may be newer.
            let mut current = self.current();
            let newer = current
                .as_ref()
                .is_some_and(|(m, _)| m.last_log_id > meta.last_log_id);
            if !newer {
                *current = Some((meta.clone(), data.clone()));
            }
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// A snapshot's data: its end offset, then the producer state as of it.
fn snapshot_data(r: &ReplicaLog, end_offset: i64) -> Result<Vec<u8>, StorageError> {
    let mut data = end_offset.to_be_bytes().to_vec();
    data.extend(r.state_at(end_offset)?.encode()?);
    Ok(data)
}

/// The end offset and producer state of a snapshot's data (`snapshot_data`).
fn parse_snapshot_data(data: &[u8]) -> Result<(i64, Option<StateSnapshot>), StorageError> {
    let corrupt = |reason: String| StorageError::Corrupt {
        path: "snapshot".into(),
        reason,
    };
    let (head, rest) = data.split_first_chunk::<8>().ok_or_else(|| {
        corrupt(format!(
            "snapshot data is {} bytes, not 8 or more",
            data.len()
        ))
    })?;
    let end_offset = i64::from_be_bytes(*head);
    if rest.is_empty() {
        return Ok((end_offset, None));
    }
    let state = StateSnapshot::decode(rest, std::path::Path::new("snapshot"))?;
    if state.offset != end_offset {
        return Err(corrupt(format!(
            "snapshot ends at offset {end_offset}, its producer state at {}",
            state.offset
        )));
    }
    Ok((end_offset, Some(state)))
}

/// The snapshot ending at entry `point` (applied): its end offset and the membership then.
fn snapshot_at(r: &ReplicaLog, point: LogId) -> Result<(Meta, Vec<u8>), StorageError> {
    let membership = r
        .membership_upto(point.index)
        .map_or_else(StoredMembership::default, |(id, m)| {
            StoredMembership::new(Some(id), m)
        });
    let meta = Meta {
        last_log_id: Some(point),
        last_membership: membership,
        snapshot_id: point.to_string(),
    };
    Ok((meta, snapshot_data(r, r.offset_after(point.index))?))
}

/// At start-up, the snapshot of a log purged before: it ends where the purge did (what a
/// replica that needs the purged entries gets instead). Unreadable: none (a snapshot is then
/// built when one is needed).
fn purged_snapshot(replica: &SharedReplica) -> Current {
    let r = lock(replica);
    let point = r.state().purged?;
    snapshot_at(&r, point)
        .map_err(|e| tracing::error!(error = %e, "cannot read the snapshot of the purged entries"))
        .ok()
}

impl RaftSnapshotBuilder<ChronikRaft> for PartitionStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ChronikRaft>, RaftStorageError> {
        self.build()
            .map_err(|e| io_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, &e))
    }
}

impl RaftStateMachine<ChronikRaft> for PartitionStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership), RaftStorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let mut moved = false;
        for entry in entries {
            let id = entry.log_id;
            match entry.payload {
                EntryPayload::Normal(_) => {
                    let applied = lock(&self.replica)
                        .apply(id)
                        .map_err(|e| io_error(ErrorSubject::Apply(id), ErrorVerb::Write, &e))?;
                    out.push(applied);
                    moved = true;
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(id), m);
                    out.push(Applied::RaftOnly);
                }
                EntryPayload::Blank => {
                    // A blank entry, or a batch kept out of the log (openraft applies what it
                    // reads back from the log, where such a batch reads as blank).
                    let applied = lock(&self.replica)
                        .apply_kept_out(id.index)
                        .map_err(|e| io_error(ErrorSubject::Apply(id), ErrorVerb::Write, &e))?;
                    out.push(applied);
                }
            }
            self.applied = Some(id);
        }
        if moved {
            self.hw_moved.notify_waiters();
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, RaftStorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), RaftStorageError> {
        let data = snapshot.into_inner();
        let fail = |e: &chronik_storage::StorageError| {
            io_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        let (end_offset, producers) = parse_snapshot_data(&data).map_err(|e| fail(&e))?;
        if let Some(last) = meta.last_log_id {
            let membership = meta
                .last_membership
                .log_id()
                .map(|id| (id, meta.last_membership.membership().clone()));
            lock(&self.replica)
                .install_snapshot(last, end_offset, producers, membership, now_ms())
                .map_err(|e| fail(&e))?;
            self.hw_moved.notify_waiters();
        }
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        *self.current() = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<ChronikRaft>>, RaftStorageError> {
        Ok(self.current().clone().map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
