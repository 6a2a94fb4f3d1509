//! `RaftGroups`: the Raft groups this node hosts, by group id; answers peers' requests by
//! handing them to the right group.

use crate::transport::{GroupId, PeerHandler, PeerRequest, PeerResponse};
use crate::types::{NodeId, Raft};
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

#[derive(Default)]
pub struct RaftGroups {
    node_id: NodeId,
    groups: RwLock<HashMap<GroupId, Raft>>,
}

impl RaftGroups {
    pub fn new(node_id: NodeId) -> Self {
        Self {
            node_id,
            groups: RwLock::default(),
        }
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
    async fn handle(&self, _from: NodeId, req: PeerRequest) -> PeerResponse {
        match req {
            PeerRequest::Hello { .. } => PeerResponse::Hello {
                node_id: self.node_id,
            },
            PeerRequest::AppendEntries(g, r) => match self.get(&g) {
                Some(raft) => PeerResponse::AppendEntries(raft.append_entries(r).await),
                None => PeerResponse::UnknownGroup,
            },
            PeerRequest::Vote(g, r) => match self.get(&g) {
                Some(raft) => PeerResponse::Vote(raft.vote(r).await),
                None => PeerResponse::UnknownGroup,
            },
            PeerRequest::InstallSnapshot(g, r) => match self.get(&g) {
                Some(raft) => PeerResponse::InstallSnapshot(raft.install_snapshot(r).await),
                None => PeerResponse::UnknownGroup,
            },
        }
    }
}
