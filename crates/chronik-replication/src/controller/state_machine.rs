//! The controller's Raft state machine: applies metadata records to the `ClusterImage` every
//! node serves from. Unlike a partition, its state is not the log itself, so at start-up it is
//! empty and openraft re-applies the committed records (the metadata log is small); a snapshot
//! is the image as JSON.

use super::image::ClusterImage;
use super::records;
use crate::log_store::io_error;
use crate::types::{Applied, ChronikRaft, Entry, LogId, RaftStorageError, StoredMembership};
use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta,
};
use std::io::Cursor;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tokio::sync::watch;

type Meta = SnapshotMeta<u64, openraft::EmptyNode>;
/// The last snapshot: metadata and data (the image as JSON).
type Current = Option<(Meta, Vec<u8>)>;

/// The image, shared with everything that serves metadata.
pub type SharedImage = Arc<RwLock<ClusterImage>>;

#[derive(Debug, Clone)]
pub struct ControllerStateMachine {
    image: SharedImage,
    applied: Option<LogId>,
    membership: StoredMembership,
    snapshot: Arc<Mutex<Current>>,
    /// The index of the last applied record, for those waiting on the image.
    changed: Arc<watch::Sender<u64>>,
}

fn corrupt(reason: String) -> chronik_storage::StorageError {
    chronik_storage::StorageError::Corrupt {
        path: "__cluster_metadata".into(),
        reason,
    }
}

impl ControllerStateMachine {
    pub fn new(image: SharedImage, changed: Arc<watch::Sender<u64>>) -> Self {
        Self {
            image,
            applied: None,
            membership: StoredMembership::default(),
            snapshot: Arc::default(),
            changed,
        }
    }

    fn snapshot_slot(&self) -> std::sync::MutexGuard<'_, Current> {
        self.snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RaftSnapshotBuilder<ChronikRaft> for ControllerStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ChronikRaft>, RaftStorageError> {
        let data = {
            let image = self.image.read().unwrap_or_else(PoisonError::into_inner);
            serde_json::to_vec(&*image).map_err(|e| {
                io_error(
                    ErrorSubject::StateMachine,
                    ErrorVerb::Read,
                    &corrupt(e.to_string()),
                )
            })?
        };
        let meta = Meta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: self
                .applied
                .map_or_else(|| "none".to_string(), |a| a.to_string()),
        };
        *self.snapshot_slot() = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<ChronikRaft> for ControllerStateMachine {
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
        for entry in entries {
            let id = entry.log_id;
            match entry.payload {
                EntryPayload::Normal(batch) => {
                    let record = records::from_batch(&batch.0).map_err(|e| {
                        io_error(ErrorSubject::Apply(id), ErrorVerb::Read, &corrupt(e))
                    })?;
                    let outcome = self
                        .image
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .apply(&record);
                    tracing::debug!(
                        index = id.index,
                        ?record,
                        ?outcome,
                        "metadata record applied"
                    );
                    out.push(Applied::Metadata(outcome));
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(id), m);
                    out.push(Applied::RaftOnly);
                }
                EntryPayload::Blank => out.push(Applied::RaftOnly),
            }
            self.applied = Some(id);
            self.changed.send_replace(id.index);
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
        let image: ClusterImage = serde_json::from_slice(&data).map_err(|e| {
            io_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Read,
                &corrupt(e.to_string()),
            )
        })?;
        *self.image.write().unwrap_or_else(PoisonError::into_inner) = image;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        *self.snapshot_slot() = Some((meta.clone(), data));
        if let Some(a) = meta.last_log_id {
            self.changed.send_replace(a.index);
        }
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<ChronikRaft>>, RaftStorageError> {
        Ok(self.snapshot_slot().clone().map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
