//! The partition's Raft state machine. The data is the log itself, so applying a committed
//! entry only moves the high watermark (the commit point, translated to a Kafka offset) and
//! answers the offsets the batch got; the applied state at start-up is the last known commit.
//!
//! A snapshot carries only the Kafka offset where its entries end: it stands for "every entry
//! up to here", and the log keeps those entries until retention deletes them, as Kafka does. A
//! replica that installs one without having those entries starts its log over at that offset.

use crate::log_store::{io_error, lock, now_ms, SharedReplica};
use crate::replica_log::ReplicaLog;
use crate::types::{Applied, ChronikRaft, Entry, LogId, RaftStorageError, StoredMembership};
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
    fn build(&mut self) -> Snapshot<ChronikRaft> {
        let (meta, data) = {
            let r = lock(&self.replica);
            match r.snapshot_point().filter(|p| Some(*p) <= self.applied) {
                Some(point) => snapshot_at(&r, point),
                None => {
                    let end_offset = self.applied.map_or(0, |a| r.offset_after(a.index));
                    let meta = Meta {
                        last_log_id: self.applied,
                        last_membership: self.membership.clone(),
                        snapshot_id: self
                            .applied
                            .map_or_else(|| "none".to_string(), |a| a.to_string()),
                    };
                    (meta, end_offset.to_be_bytes().to_vec())
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
        Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }
    }
}

/// The snapshot ending at entry `point` (applied): its end offset and the membership then.
fn snapshot_at(r: &ReplicaLog, point: LogId) -> (Meta, Vec<u8>) {
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
    (meta, r.offset_after(point.index).to_be_bytes().to_vec())
}

/// At start-up, the snapshot of a log purged before: it ends where the purge did (what a
/// replica that needs the purged entries gets instead).
fn purged_snapshot(replica: &SharedReplica) -> Current {
    let r = lock(replica);
    let point = r.state().purged?;
    Some(snapshot_at(&r, point))
}

impl RaftSnapshotBuilder<ChronikRaft> for PartitionStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ChronikRaft>, RaftStorageError> {
        Ok(self.build())
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
        let end_offset = <[u8; 8]>::try_from(data.as_slice())
            .map(i64::from_be_bytes)
            .map_err(|_| {
                fail(&chronik_storage::StorageError::Corrupt {
                    path: "snapshot".into(),
                    reason: format!("snapshot data is {} bytes, not 8", data.len()),
                })
            })?;
        if let Some(last) = meta.last_log_id {
            let membership = meta
                .last_membership
                .log_id()
                .map(|id| (id, meta.last_membership.membership().clone()));
            lock(&self.replica)
                .install_snapshot(last, end_offset, membership, now_ms())
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
