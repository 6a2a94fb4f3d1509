//! An in-process network and replica set for tests of partition groups: every replica is a
//! real `Raft` over a real partition log in its own temporary directory; the network calls the
//! target's `Raft` directly and can drop a node or cut links.

#![allow(dead_code)]

use bytes::Bytes;
use chronik_replication::config::partition_raft_config;
use chronik_replication::flusher::Flusher;
use chronik_replication::replica_log::lock_log;
use chronik_replication::types::{NodeId, Raft};
use chronik_replication::{Applied, RecordBatch};
use chronik_replication::{ChronikRaft, LogStore, PartitionStateMachine, ReplicaLog, SharedLog};
use chronik_storage::batch_builder::uncompressed_batch;
use chronik_storage::config::LogConfig;
use chronik_storage::PartitionLog;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::EmptyNode;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, thiserror::Error)]
#[error("node {0} is unreachable")]
pub struct Down(NodeId);

/// Who is up and which links are cut.
#[derive(Default)]
struct RouterState {
    rafts: BTreeMap<NodeId, Raft>,
    /// Unordered pairs that cannot talk.
    cut: BTreeSet<(NodeId, NodeId)>,
}

#[derive(Clone, Default)]
pub struct Router {
    state: Arc<Mutex<RouterState>>,
}

impl Router {
    fn target(&self, from: NodeId, to: NodeId) -> Result<Raft, Down> {
        let s = self.state.lock().map_err(|_| Down(to))?;
        if s.cut.contains(&(from.min(to), from.max(to))) {
            return Err(Down(to));
        }
        s.rafts.get(&to).cloned().ok_or(Down(to))
    }
    pub fn add(&self, id: NodeId, raft: Raft) {
        if let Ok(mut s) = self.state.lock() {
            s.rafts.insert(id, raft);
        }
    }
    pub fn remove(&self, id: NodeId) -> Option<Raft> {
        self.state.lock().ok().and_then(|mut s| s.rafts.remove(&id))
    }
    /// Cuts every link between `id` and the others.
    pub fn isolate(&self, id: NodeId, others: &[NodeId]) {
        if let Ok(mut s) = self.state.lock() {
            for o in others {
                s.cut.insert((id.min(*o), id.max(*o)));
            }
        }
    }
    pub fn heal(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.cut.clear();
        }
    }
}

pub struct Link {
    from: NodeId,
    to: NodeId,
    router: Router,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, EmptyNode, RaftError<NodeId, E>>;

fn unreachable<E: std::error::Error>(e: Down) -> RPCError<NodeId, EmptyNode, E> {
    RPCError::Unreachable(Unreachable::new(&e))
}

impl RaftNetwork<ChronikRaft> for Link {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<ChronikRaft>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let raft = self
            .router
            .target(self.from, self.to)
            .map_err(unreachable)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new(self.to, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<ChronikRaft>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        let raft = self
            .router
            .target(self.from, self.to)
            .map_err(unreachable)?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new(self.to, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        let raft = self
            .router
            .target(self.from, self.to)
            .map_err(unreachable)?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new(self.to, e)))
    }
}

pub struct Factory {
    from: NodeId,
    router: Router,
}

impl RaftNetworkFactory<ChronikRaft> for Factory {
    type Network = Link;
    async fn new_client(&mut self, target: NodeId, _node: &EmptyNode) -> Link {
        Link {
            from: self.from,
            to: target,
            router: self.router.clone(),
        }
    }
}

/// One replica: its directory, its shared log and its running Raft (if up).
pub struct Replica {
    pub id: NodeId,
    pub dir: PathBuf,
    pub log: SharedLog,
    pub raft: Raft,
}

/// Opens (or reopens) replica `id` in `dir` and starts its Raft on `router`.
pub async fn start_replica(
    id: NodeId,
    dir: &Path,
    router: &Router,
) -> Result<Replica, Box<dyn std::error::Error + Send + Sync>> {
    let network = Factory {
        from: id,
        router: router.clone(),
    };
    let replica = start_replica_on(id, dir, network).await?;
    router.add(id, replica.raft.clone());
    Ok(replica)
}

/// Opens (or reopens) replica `id` in `dir` and starts its Raft on `network`.
pub async fn start_replica_on<N: RaftNetworkFactory<ChronikRaft>>(
    id: NodeId,
    dir: &Path,
    network: N,
) -> Result<Replica, Box<dyn std::error::Error + Send + Sync>> {
    let fs = chronik_storage::fs::real();
    let (log, _) = PartitionLog::open_on(fs.clone(), dir, LogConfig::default(), 0, 0, 0)?;
    let log: SharedLog = Arc::new(Mutex::new(log));
    let replica = Arc::new(Mutex::new(ReplicaLog::open(fs, dir, Arc::clone(&log), 0)?));
    let sm = PartitionStateMachine::new(Arc::clone(&replica), Arc::new(Notify::new()));
    let config = Arc::new(partition_raft_config("test-0", id - 1)?);
    // Appends go through a group-commit flusher, as on a node.
    let store = LogStore::with_flusher(replica, Flusher::start());
    let raft = Raft::new(id, config, network, store, sm).await?;
    Ok(Replica {
        id,
        dir: dir.to_path_buf(),
        log,
        raft,
    })
}

pub const WAIT: Option<Duration> = Some(Duration::from_secs(20));

pub fn batch(i: usize) -> RecordBatch {
    RecordBatch(Bytes::from(uncompressed_batch(
        1 + (i % 3) as i32,
        1_700_000_000_000 + i as i64,
        format!("value-{i}").as_bytes(),
    )))
}

pub async fn leader_of(
    rafts: &[&Raft],
) -> Result<NodeId, Box<dyn std::error::Error + Send + Sync>> {
    let m = rafts[0]
        .wait(WAIT)
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await?;
    let leader = m.current_leader.ok_or("no leader")?;
    for r in rafts {
        r.wait(WAIT)
            .metrics(
                |m| m.current_leader == Some(leader),
                "all agree on the leader",
            )
            .await?;
    }
    Ok(leader)
}

/// What `write` acknowledged: each batch's (base, last) offsets and the Raft index of the last.
pub struct Written {
    pub offsets: Vec<(i64, i64)>,
    pub last_index: u64,
}

impl Written {
    pub fn end_offset(&self) -> i64 {
        self.offsets.last().map_or(0, |o| o.1 + 1)
    }
}

/// Writes `n` batches through the leader, each acknowledged after commit.
pub async fn write(
    leader: &Raft,
    from: usize,
    n: usize,
) -> Result<Written, Box<dyn std::error::Error + Send + Sync>> {
    let mut offsets = Vec::new();
    let mut last_index = 0;
    for i in from..from + n {
        let resp = leader.client_write(batch(i)).await?;
        last_index = resp.log_id.index;
        match resp.data {
            Applied::Batch {
                base_offset,
                last_offset,
            } => offsets.push((base_offset, last_offset)),
            other => return Err(format!("a batch applied as {other:?}").into()),
        }
    }
    Ok(Written {
        offsets,
        last_index,
    })
}

/// Waits until `raft` has applied entry `index`.
pub async fn applied(
    raft: &Raft,
    index: u64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    raft.wait(WAIT)
        .applied_index_at_least(Some(index), "applied")
        .await?;
    Ok(())
}

/// Every stored batch of a replica's log below its log end, with its bytes.
pub fn stored(r: &Replica) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error + Send + Sync>> {
    let log = lock_log(&r.log);
    let mut out = Vec::new();
    for loc in log.batch_locations()? {
        out.push(log.read_batch_at(loc.base_offset)?);
    }
    Ok(out)
}

pub fn assert_contiguous(offsets: &[(i64, i64)], start: i64) {
    let mut next = start;
    for (base, last) in offsets {
        assert_eq!(*base, next, "offsets are contiguous: {offsets:?}");
        next = last + 1;
    }
}
