//! openraft's `RaftNetwork` over the peer transport: one factory per Raft group, sharing the
//! node's one `PeerClient` per peer.

use super::client::{CallError, PeerClient};
use super::wire::{GroupId, PeerRequest, PeerResponse};
use crate::types::{ChronikRaft, NodeId};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::EmptyNode;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The node's clients to its peers, by node id.
#[derive(Debug, Default)]
pub struct Peers {
    clients: BTreeMap<NodeId, Arc<PeerClient>>,
}

impl Peers {
    /// `addrs`: the peer address of every other voter.
    pub fn new(from: NodeId, addrs: &BTreeMap<NodeId, String>) -> Self {
        Self {
            clients: addrs
                .iter()
                .filter(|(id, _)| **id != from)
                .map(|(id, addr)| (*id, Arc::new(PeerClient::new(from, *id, addr.clone()))))
                .collect(),
        }
    }
    pub fn get(&self, id: NodeId) -> Option<&Arc<PeerClient>> {
        self.clients.get(&id)
    }
}

/// The network of one Raft group.
#[derive(Debug, Clone)]
pub struct GroupNetwork {
    group: GroupId,
    peers: Arc<Peers>,
}

impl GroupNetwork {
    pub fn new(group: GroupId, peers: Arc<Peers>) -> Self {
        Self { group, peers }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

pub struct GroupLink {
    group: GroupId,
    target: NodeId,
    client: Option<Arc<PeerClient>>,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, EmptyNode, RaftError<NodeId, E>>;

impl GroupLink {
    async fn call<E: std::error::Error>(
        &self,
        req: PeerRequest,
        option: &RPCOption,
    ) -> Result<PeerResponse, RPCError<NodeId, EmptyNode, RaftError<NodeId, E>>> {
        let Some(client) = &self.client else {
            return Err(RPCError::Unreachable(Unreachable::new(&Msg(format!(
                "no address for node {}",
                self.target
            )))));
        };
        match client.call(&req, option.hard_ttl()).await {
            Ok(PeerResponse::UnknownGroup) => Err(RPCError::Unreachable(Unreachable::new(&Msg(
                format!("node {} has no replica of {}", self.target, self.group),
            )))),
            Ok(PeerResponse::BadRequest(e)) => Err(RPCError::Network(NetworkError::new(&Msg(e)))),
            Ok(resp) => Ok(resp),
            Err(CallError::TooLarge(..)) => {
                let hint = match &req {
                    PeerRequest::AppendEntries(_, r) => (r.entries.len() as u64 / 2).max(1),
                    _ => 1,
                };
                Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(hint),
                ))
            }
            Err(e) => Err(RPCError::Unreachable(Unreachable::new(&e))),
        }
    }

    fn unexpected<E: std::error::Error>(
        &self,
        resp: PeerResponse,
    ) -> RPCError<NodeId, EmptyNode, RaftError<NodeId, E>> {
        RPCError::Network(NetworkError::new(&Msg(format!(
            "unexpected response from node {}: {resp:?}",
            self.target
        ))))
    }
}

impl RaftNetwork<ChronikRaft> for GroupLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<ChronikRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        match self
            .call(PeerRequest::AppendEntries(self.group.clone(), rpc), &option)
            .await?
        {
            PeerResponse::AppendEntries(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<ChronikRaft>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        match self
            .call(
                PeerRequest::InstallSnapshot(self.group.clone(), rpc),
                &option,
            )
            .await?
        {
            PeerResponse::InstallSnapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        match self
            .call(PeerRequest::Vote(self.group.clone(), rpc), &option)
            .await?
        {
            PeerResponse::Vote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }
}

impl RaftNetworkFactory<ChronikRaft> for GroupNetwork {
    type Network = GroupLink;
    async fn new_client(&mut self, target: NodeId, _node: &EmptyNode) -> GroupLink {
        GroupLink {
            group: self.group.clone(),
            target,
            client: self.peers.get(target).cloned(),
        }
    }
}
