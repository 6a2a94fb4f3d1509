//! openraft's `RaftNetwork` over the peer transport: one factory per Raft group, sharing the
//! node's one `PeerClient` per peer.

use super::client::{CallError, PeerClient};
use super::wire::{GroupId, PeerRequest, PeerResponse};
use crate::config::APPEND_ENTRIES_BYTES_MAX;
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
use openraft::{EmptyNode, Entry, EntryPayload};
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
            // A slow answer is not an unreachable peer: openraft pauses replication to an
            // unreachable peer for 500 ms, but retries after a network error at once. Under
            // load an AppendEntries that waits for the follower's fsync can outlast the
            // heartbeat-long deadline; reporting it as unreachable stalled the partition.
            Err(e @ CallError::Timeout(..)) => Err(RPCError::Network(NetworkError::new(&e))),
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

/// How many of `entries` (at least one) fit in `APPEND_ENTRIES_BYTES_MAX`, when not all do.
fn entries_that_fit(entries: &[Entry<ChronikRaft>]) -> Option<u64> {
    let mut bytes = 0usize;
    for (i, e) in entries.iter().enumerate() {
        if let EntryPayload::Normal(batch) = &e.payload {
            bytes = bytes.saturating_add(batch.0.len());
        }
        if bytes > APPEND_ENTRIES_BYTES_MAX {
            return (entries.len() > 1).then_some((i as u64).max(1));
        }
    }
    None
}

impl RaftNetwork<ChronikRaft> for GroupLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<ChronikRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        if let Some(fit) = entries_that_fit(&rpc.entries) {
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit),
            ));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RecordBatch;
    use bytes::Bytes;
    use openraft::{CommittedLeaderId, LogId};

    fn batch(index: u64, bytes: usize) -> Entry<ChronikRaft> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(RecordBatch(Bytes::from(vec![0u8; bytes]))),
        }
    }

    #[test]
    fn entries_within_the_byte_limit_are_sent_whole() {
        let mib = 1024 * 1024;
        let entries: Vec<_> = (1..=4).map(|i| batch(i, mib)).collect();
        assert_eq!(entries_that_fit(&entries), None);
        assert_eq!(entries_that_fit(&[]), None);
    }

    #[test]
    fn too_many_bytes_give_a_hint_of_the_entries_that_fit() {
        let mib = 1024 * 1024;
        let entries: Vec<_> = (1..=8).map(|i| batch(i, mib)).collect();
        assert_eq!(entries_that_fit(&entries), Some(4));
    }

    #[test]
    fn one_oversized_entry_goes_alone() {
        let big = APPEND_ENTRIES_BYTES_MAX + 1;
        assert_eq!(entries_that_fit(&[batch(1, big)]), None);
        assert_eq!(entries_that_fit(&[batch(1, big), batch(2, 10)]), Some(1));
        assert_eq!(entries_that_fit(&[batch(1, 10), batch(2, big)]), Some(1));
    }
}
