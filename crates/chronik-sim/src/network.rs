//! The simulated network between replicas: every RPC goes through one shared state that can
//! drop it, delay it (virtual time), duplicate it, or refuse it because the target is down or
//! cut off. Every choice comes from the run's seeded generator.

use chronik_replication::types::{NodeId, Raft};
use chronik_replication::ChronikRaft;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::EmptyNode;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How unreliable the network is right now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConditions {
    /// Probability that an RPC is lost.
    pub drop: f64,
    /// Probability that an RPC is delivered twice.
    pub duplicate: f64,
    /// Each delivery waits a uniform time up to this (so RPCs overtake each other).
    pub max_delay_ms: u64,
}

impl NetConditions {
    pub const CALM: Self = Self {
        drop: 0.0,
        duplicate: 0.0,
        max_delay_ms: 2,
    };
}

pub struct NetState {
    rafts: BTreeMap<NodeId, Raft>,
    cut: BTreeSet<(NodeId, NodeId)>,
    pub conditions: NetConditions,
    rng: ChaCha8Rng,
}

#[derive(Clone)]
pub struct SimNetwork {
    state: Arc<Mutex<NetState>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Lost(&'static str);

/// What the network decided for one RPC.
enum Delivery {
    Refused(&'static str),
    Deliver {
        raft: Raft,
        delay_ms: u64,
        twice: bool,
    },
}

impl SimNetwork {
    pub fn new(rng: ChaCha8Rng) -> Self {
        Self {
            state: Arc::new(Mutex::new(NetState {
                rafts: BTreeMap::new(),
                cut: BTreeSet::new(),
                conditions: NetConditions::CALM,
                rng,
            })),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn up(&self, id: NodeId, raft: Raft) {
        self.lock().rafts.insert(id, raft);
    }

    pub fn down(&self, id: NodeId) {
        self.lock().rafts.remove(&id);
    }

    /// Cuts every link between the two sides.
    pub fn partition(&self, side: &BTreeSet<NodeId>, all: &[NodeId]) {
        let mut s = self.lock();
        for a in side {
            for b in all.iter().filter(|b| !side.contains(b)) {
                s.cut.insert(((*a).min(*b), (*a).max(*b)));
            }
        }
    }

    pub fn heal(&self) {
        let mut s = self.lock();
        s.cut.clear();
        s.conditions = NetConditions::CALM;
    }

    fn decide(&self, from: NodeId, to: NodeId) -> Delivery {
        let mut s = self.lock();
        let c = s.conditions;
        let lost = s.rng.gen_bool(c.drop);
        let twice = s.rng.gen_bool(c.duplicate);
        let delay_ms = s.rng.gen_range(0..=c.max_delay_ms);
        if s.cut.contains(&(from.min(to), from.max(to))) {
            return Delivery::Refused("partitioned");
        }
        let Some(raft) = s.rafts.get(&to).cloned() else {
            return Delivery::Refused("node down");
        };
        if lost {
            return Delivery::Refused("lost");
        }
        Delivery::Deliver {
            raft,
            delay_ms,
            twice,
        }
    }

    pub fn factory(&self, from: NodeId) -> SimFactory {
        SimFactory {
            from,
            net: self.clone(),
        }
    }
}

pub struct SimFactory {
    from: NodeId,
    net: SimNetwork,
}

impl RaftNetworkFactory<ChronikRaft> for SimFactory {
    type Network = SimLink;
    async fn new_client(&mut self, target: NodeId, _node: &EmptyNode) -> SimLink {
        SimLink {
            from: self.from,
            to: target,
            net: self.net.clone(),
        }
    }
}

pub struct SimLink {
    from: NodeId,
    to: NodeId,
    net: SimNetwork,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, EmptyNode, RaftError<NodeId, E>>;

impl SimLink {
    async fn route<E: std::error::Error>(
        &self,
    ) -> Result<(Raft, bool), RPCError<NodeId, EmptyNode, RaftError<NodeId, E>>> {
        match self.net.decide(self.from, self.to) {
            Delivery::Refused(why) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Err(RPCError::Unreachable(Unreachable::new(&Lost(why))))
            }
            Delivery::Deliver {
                raft,
                delay_ms,
                twice,
            } => {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                Ok((raft, twice))
            }
        }
    }
}

impl RaftNetwork<ChronikRaft> for SimLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<ChronikRaft>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let (raft, twice) = self.route().await?;
        if twice {
            let _ = raft.append_entries(rpc.clone()).await;
        }
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<ChronikRaft>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        let (raft, _) = self.route().await?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        let (raft, twice) = self.route().await?;
        if twice {
            let _ = raft.vote(rpc.clone()).await;
        }
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }
}
