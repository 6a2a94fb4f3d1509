//! `RaftGroups`: the Raft groups this node hosts, by group id; answers peers' requests by
//! handing them to the right group.

use crate::controller::{records, MetadataOutcome, MetadataRecord, CONTROLLER_TOPIC};
use crate::leadership::LeaderDirectory;
use crate::transport::wire::ControllerWriteError;
use crate::transport::{GroupId, PeerHandler, PeerRequest, PeerResponse};
use crate::txn_markers::MarkerWriter;
use crate::types::{Applied, RecordBatch};
use crate::types::{LogId, NodeId, Raft};
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::{VoteRequest, VoteResponse};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

#[derive(Default)]
pub struct RaftGroups {
    node_id: NodeId,
    groups: RwLock<HashMap<GroupId, Raft>>,
    /// Leadership announced by the peers.
    pub directory: LeaderDirectory,
    /// Writes transaction markers peers ask for (set by the broker once it is open).
    markers: OnceLock<Arc<dyn MarkerWriter>>,
    /// Groups whose replica here lost entries it had, with the last entry it had: it grants no
    /// vote to a candidate whose log is shorter than that until repaired.
    repairing: RwLock<HashMap<GroupId, LogId>>,
}

impl RaftGroups {
    pub fn new(node_id: NodeId) -> Self {
        Self {
            node_id,
            groups: RwLock::default(),
            directory: LeaderDirectory::default(),
            markers: OnceLock::new(),
            repairing: RwLock::default(),
        }
    }

    /// Marks the group's replica here as repairing lost entries up to `had` (None: repaired).
    pub fn set_repairing(&self, group: &GroupId, had: Option<LogId>) {
        let mut m = self
            .repairing
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match had {
            Some(c) => m.insert(group.clone(), c),
            None => m.remove(group),
        };
    }

    fn is_repairing(&self, group: &GroupId) -> bool {
        self.repairing
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(group)
    }

    /// A vote request this replica must refuse whatever Raft says: it lost entries it had, and
    /// the candidate's log is shorter than the one it had (Raft's vote rule on the log it had:
    /// the candidate may lack committed entries).
    fn refuse_vote(
        &self,
        group: &GroupId,
        req: &VoteRequest<NodeId>,
    ) -> Option<VoteResponse<NodeId>> {
        let had = *self
            .repairing
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)?;
        (req.last_log_id < Some(had)).then_some(VoteResponse {
            vote: req.vote,
            vote_granted: false,
            last_log_id: Some(had),
        })
    }
    pub fn insert(&self, group: GroupId, raft: Raft) {
        self.groups
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(group, raft);
    }
    pub fn remove(&self, group: &GroupId) -> Option<Raft> {
        self.groups
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(group)
    }
    /// Registers the writer of transaction markers (once; later calls are ignored).
    pub fn set_marker_writer(&self, writer: Arc<dyn MarkerWriter>) {
        let _ = self.markers.set(writer);
    }

    pub fn get(&self, group: &GroupId) -> Option<Raft> {
        self.groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)
            .cloned()
    }
    pub fn all(&self) -> Vec<(GroupId, Raft)> {
        self.groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(g, r)| (g.clone(), r.clone()))
            .collect()
    }
}

impl PeerHandler for RaftGroups {
    async fn handle(&self, from: NodeId, req: PeerRequest) -> PeerResponse {
        match req {
            PeerRequest::Leadership(announcements) => {
                self.directory
                    .record(from, announcements, tokio::time::Instant::now());
                PeerResponse::Noted
            }
            PeerRequest::WriteTxnMarkers(markers) => match self.markers.get() {
                Some(writer) => PeerResponse::TxnMarkers(writer.write_markers(markers).await),
                None => PeerResponse::BadRequest("this node is not serving partitions yet".into()),
            },
            PeerRequest::VerifyTxn(request) => PeerResponse::TxnVerdict(match self.markers.get() {
                Some(writer) => writer.verify_txn(&request),
                None => crate::txn_markers::TxnVerdict::NotCoordinator,
            }),
            PeerRequest::Hello { .. } => PeerResponse::Hello {
                node_id: self.node_id,
            },
            PeerRequest::AppendEntries(g, r) => match self.get(&g) {
                Some(raft) => PeerResponse::AppendEntries(raft.append_entries(r).await),
                None => PeerResponse::UnknownGroup,
            },
            PeerRequest::Vote(g, r) => match (self.get(&g), self.refuse_vote(&g, &r)) {
                (Some(_), Some(refused)) => {
                    tracing::info!(group = %g, candidate = ?r.vote, last_log = ?r.last_log_id,
                        "vote refused: this replica is repairing entries it lost");
                    PeerResponse::Vote(Ok(refused))
                }
                (Some(raft), None) => PeerResponse::Vote(raft.vote(r).await),
                (None, _) => PeerResponse::UnknownGroup,
            },
            PeerRequest::InstallSnapshot(g, r) => match self.get(&g) {
                Some(raft) => PeerResponse::InstallSnapshot(raft.install_snapshot(r).await),
                None => PeerResponse::UnknownGroup,
            },
            PeerRequest::ElectNow(g) if self.is_repairing(&g) => PeerResponse::BadRequest(
                "this replica is repairing entries it lost; it stands for no election".into(),
            ),
            PeerRequest::ElectNow(g) => match self.get(&g) {
                Some(raft) => match raft.trigger().elect().await {
                    Ok(()) => PeerResponse::Electing,
                    Err(e) => PeerResponse::BadRequest(e.to_string()),
                },
                None => PeerResponse::UnknownGroup,
            },
            PeerRequest::ControllerWrite(record) => {
                match self.get(&GroupId::new(CONTROLLER_TOPIC, 0)) {
                    Some(raft) => {
                        PeerResponse::ControllerWrite(controller_write(&raft, &record).await)
                    }
                    None => PeerResponse::UnknownGroup,
                }
            }
        }
    }
}

/// Proposes `record` on this node's controller Raft (which must lead) and waits for it to be
/// committed and applied; answers its log index and outcome.
pub async fn controller_write(
    raft: &Raft,
    record: &MetadataRecord,
) -> Result<(u64, MetadataOutcome), ControllerWriteError> {
    let batch = records::to_batch(record, crate::log_store::now_ms())
        .map_err(|e| ControllerWriteError::Failed(e.to_string()))?;
    match raft.client_write(RecordBatch(batch.into())).await {
        Ok(resp) => match resp.data {
            Applied::Metadata(outcome) => Ok((resp.log_id.index, outcome)),
            other => Err(ControllerWriteError::Failed(format!(
                "a metadata record applied as {other:?}"
            ))),
        },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(ControllerWriteError::NotLeader(f.leader_id))
        }
        Err(e) => Err(ControllerWriteError::Failed(e.to_string())),
    }
}
