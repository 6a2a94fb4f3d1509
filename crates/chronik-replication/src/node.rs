//! `ReplicationNode`: one node's part of the cluster. It listens for peers, runs the
//! controller group (every voter is a member), registers this broker, proposes metadata
//! records (forwarding them to the controller leader), and starts the Raft groups of the
//! partition replicas the broker hosts. Start-up never waits for peers.

use crate::config::partition_raft_config;
use crate::controller::{
    ClusterImage, ControllerStateMachine, MetadataOutcome, MetadataRecord, SharedImage,
    CONTROLLER_TOPIC,
};
use crate::flusher::Flusher;
use crate::groups::{controller_write, RaftGroups};
use crate::log_store::{lock, LogStore, SharedReplica};
use crate::replica_log::{ReplicaLog, SharedLog};
use crate::state_machine::PartitionStateMachine;
use crate::transport::wire::ControllerWriteError;
use crate::transport::{serve, GroupId, GroupNetwork, PeerRequest, PeerResponse, Peers};
use crate::types::{NodeId, Raft};
use chronik_storage::config::LogConfig;
use chronik_storage::fs::FileSystem;
use chronik_storage::{PartitionLog, StorageError};
use openraft::error::{InitializeError, RaftError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a metadata proposal may take before it fails (no controller leader reachable).
pub const CONTROLLER_WRITE_TIMEOUT_MS: u64 = 10_000;
/// Pause between attempts while the controller has no leader.
const CONTROLLER_RETRY_MS: u64 = 50;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("no controller leader answered within {0} ms")]
    ControllerUnavailable(u64),
}

pub struct NodeConfig {
    pub node_id: NodeId,
    pub data_dir: PathBuf,
    /// Every voter's peer address, this node's included.
    pub voters: BTreeMap<NodeId, String>,
    /// The address Kafka clients reach this broker at.
    pub kafka_host: String,
    pub kafka_port: i32,
    pub fs: Arc<dyn FileSystem>,
}

pub struct ReplicationNode {
    pub node_id: NodeId,
    voters: BTreeSet<NodeId>,
    peers: Arc<Peers>,
    pub groups: Arc<RaftGroups>,
    controller: Raft,
    image: SharedImage,
    image_applied: watch::Receiver<u64>,
    /// Set once a proposal of this node, made after it started, is in its image: the image
    /// then holds everything committed before the start.
    caught_up: watch::Sender<bool>,
    replicas: Mutex<HashMap<GroupId, SharedReplica>>,
    fs: Arc<dyn FileSystem>,
    /// Group commit of every group's appends on this node.
    flusher: Flusher,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn raft_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Raft(e.to_string())
}

/// Opens the Raft view of a log in `dir`.
fn open_replica(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    log: SharedLog,
) -> Result<SharedReplica, StorageError> {
    let replica = ReplicaLog::open(Arc::clone(fs), dir, log, crate::log_store::now_ms())?;
    Ok(Arc::new(Mutex::new(replica)))
}

/// A replica that lost entries it had (`ReplicaLog::lost_upto`: its log was cut below its
/// recorded end, so it may have lost committed entries) stands for no election, and refuses its
/// vote to a candidate whose log is shorter than the one it had, until its log is at least as
/// long again (the leader sends what it lacks as to any follower that is behind). Without this,
/// it could help elect a leader that lacks committed entries.
fn guard_repair(groups: &Arc<RaftGroups>, group: &GroupId, raft: &Raft, replica: &SharedReplica) {
    let Some(had) = lock(replica).lost_upto() else {
        return;
    };
    raft.runtime_config().elect(false);
    groups.set_repairing(group, Some(had));
    let (groups, group, raft, replica) = (
        Arc::clone(groups),
        group.clone(),
        raft.clone(),
        Arc::clone(replica),
    );
    tokio::spawn(async move {
        let mut metrics = raft.metrics();
        let repaired = loop {
            if lock(&replica).last_log_id() >= Some(had) {
                break true;
            }
            if metrics.changed().await.is_err() {
                break false; // the group stopped
            }
        };
        groups.set_repairing(&group, None);
        if repaired {
            lock(&replica).repaired();
            raft.runtime_config().elect(true);
            tracing::info!(%group, had = %had,
                "the replica's log is as long as it was again; it votes and stands for election again");
        }
    });
}

/// `initialize` on every member: all write the same membership entry at index 0, so any of
/// them starting first forms the group; on a node that already has a log it is refused,
/// which is expected.
async fn initialize(raft: &Raft, members: BTreeSet<NodeId>) -> Result<(), NodeError> {
    match raft.initialize(members).await {
        Ok(()) => Ok(()),
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(raft_err(e)),
    }
}

impl ReplicationNode {
    /// Starts the peer listener and the controller group, and registers this broker in the
    /// background.
    pub async fn start(config: NodeConfig, listener: TcpListener) -> Result<Arc<Self>, NodeError> {
        let node_id = config.node_id;
        let peers = Arc::new(Peers::new(node_id, &config.voters));
        let groups = Arc::new(RaftGroups::new(node_id));
        let dir = config.data_dir.join(format!("{CONTROLLER_TOPIC}-0"));
        let (log, _) = PartitionLog::open_on(
            Arc::clone(&config.fs),
            &dir,
            LogConfig::default(),
            0,
            0,
            crate::log_store::now_ms(),
        )?;
        let log: SharedLog = Arc::new(Mutex::new(log));
        let replica = open_replica(&config.fs, &dir, log)?;
        let image: SharedImage = Arc::new(RwLock::new(ClusterImage::default()));
        let (applied_tx, image_applied) = watch::channel(0u64);
        let sm = ControllerStateMachine::new(Arc::clone(&image), Arc::new(applied_tx));
        let group = GroupId::new(CONTROLLER_TOPIC, 0);
        let flusher = Flusher::start();
        let rank = config
            .voters
            .keys()
            .position(|id| *id == node_id)
            .unwrap_or(0) as u64;
        let raft_config =
            Arc::new(partition_raft_config(CONTROLLER_TOPIC, rank).map_err(raft_err)?);
        let controller = Raft::new(
            node_id,
            raft_config,
            GroupNetwork::new(group.clone(), Arc::clone(&peers)),
            LogStore::with_flusher(Arc::clone(&replica), flusher.clone()),
            sm,
        )
        .await
        .map_err(raft_err)?;
        guard_repair(&groups, &group, &controller, &replica);
        groups.insert(group.clone(), controller.clone());
        let server = tokio::spawn(serve(listener, node_id, Arc::clone(&groups)));
        let voters: BTreeSet<NodeId> = config.voters.keys().copied().collect();
        initialize(&controller, voters.clone()).await?;
        let node = Arc::new(Self {
            node_id,
            voters,
            peers,
            groups,
            controller,
            image,
            image_applied,
            caught_up: watch::Sender::new(false),
            replicas: Mutex::new(HashMap::from([(group, replica)])),
            fs: config.fs,
            flusher,
            tasks: Mutex::new(vec![server]),
        });
        let registering = Arc::clone(&node);
        let register = tokio::spawn(async move {
            let record = MetadataRecord::RegisterBroker {
                node_id,
                host: config.kafka_host,
                port: config.kafka_port,
            };
            loop {
                match registering.propose(record.clone()).await {
                    // `propose` returns once the record is in this node's image, and the
                    // leader committed it after everything committed before this start.
                    Ok(_) => break,
                    Err(e) => tracing::debug!(error = %e, "registering this broker; retrying"),
                }
            }
            registering.caught_up.send_replace(true);
            tracing::info!(node_id, "broker registered with the controller");
        });
        node.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(register);
        Ok(node)
    }

    /// Whether peer `node` answered a request of this node within `within` (false for this
    /// node itself and for unknown nodes).
    pub fn peer_answered_within(&self, node: NodeId, within: std::time::Duration) -> bool {
        self.peers
            .get(node)
            .is_some_and(|p| p.answered_within(within))
    }

    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }

    /// Runs `f` on the current metadata image.
    pub fn with_image<R>(&self, f: impl FnOnce(&ClusterImage) -> R) -> R {
        f(&self.image.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A receiver that changes whenever a metadata record is applied.
    pub fn image_changes(&self) -> watch::Receiver<u64> {
        self.image_applied.clone()
    }

    /// Whether this node's image holds every metadata record committed before it started
    /// (false until then: a topic missing from it may exist).
    pub fn metadata_caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }

    /// A receiver that changes when `metadata_caught_up` turns true.
    pub fn caught_up_changes(&self) -> watch::Receiver<bool> {
        self.caught_up.subscribe()
    }

    /// Why this node's controller group stopped, if its storage failed.
    pub fn controller_failure(&self) -> Option<String> {
        storage_failure(&self.controller)
    }

    pub fn controller_leader(&self) -> Option<NodeId> {
        self.controller.metrics().borrow().current_leader
    }

    /// Proposes a metadata record to the controller leader, wherever it is, and returns once
    /// this node's image includes it.
    pub async fn propose(&self, record: MetadataRecord) -> Result<MetadataOutcome, NodeError> {
        let deadline = Instant::now() + Duration::from_millis(CONTROLLER_WRITE_TIMEOUT_MS);
        loop {
            let attempt = match self.controller_leader() {
                Some(leader) if leader == self.node_id => {
                    controller_write(&self.controller, &record).await
                }
                Some(leader) => self.forward(leader, &record).await,
                None => Err(ControllerWriteError::NotLeader(None)),
            };
            match attempt {
                Ok((index, outcome)) => {
                    self.wait_applied(index, deadline).await?;
                    return Ok(outcome);
                }
                Err(e) => {
                    if Instant::now() >= deadline {
                        tracing::warn!(error = %e, "metadata proposal failed");
                        return Err(NodeError::ControllerUnavailable(
                            CONTROLLER_WRITE_TIMEOUT_MS,
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(CONTROLLER_RETRY_MS)).await;
                }
            }
        }
    }

    async fn forward(
        &self,
        leader: NodeId,
        record: &MetadataRecord,
    ) -> Result<(u64, MetadataOutcome), ControllerWriteError> {
        let client = self
            .peers
            .get(leader)
            .ok_or(ControllerWriteError::NotLeader(Some(leader)))?;
        let req = PeerRequest::ControllerWrite(record.clone());
        match client
            .call(&req, Duration::from_millis(CONTROLLER_WRITE_TIMEOUT_MS))
            .await
        {
            Ok(PeerResponse::ControllerWrite(r)) => r,
            Ok(other) => Err(ControllerWriteError::Failed(format!("{other:?}"))),
            Err(e) => Err(ControllerWriteError::Failed(e.to_string())),
        }
    }

    /// Sends the partitions this node leads to every peer (once a second; see `leadership`).
    /// Does not wait for the answers.
    pub fn announce_leadership(&self, announcements: Vec<crate::leadership::Announcement>) {
        let req = Arc::new(PeerRequest::Leadership(announcements));
        for peer in self.voters.iter().filter(|id| **id != self.node_id) {
            let Some(client) = self.peers.get(*peer).cloned() else {
                continue;
            };
            let req = Arc::clone(&req);
            tokio::spawn(async move {
                let deadline =
                    Duration::from_millis(crate::leadership::LEADERSHIP_ANNOUNCEMENT_INTERVAL_MS);
                let _ = client.call(&req, deadline).await;
            });
        }
    }

    /// The leader of `group` as its leader announced it, if current (for a partition this node
    /// has no replica of).
    pub fn announced_leader(&self, group: &GroupId) -> Option<crate::leadership::AnnouncedLeader> {
        self.groups
            .directory
            .leader(group, tokio::time::Instant::now())
    }

    /// Asks node `target` (the coordinator of the transactional id) whether a transactional
    /// batch belongs to an open transaction (KIP-890 part 1).
    pub async fn verify_txn(
        &self,
        target: NodeId,
        request: crate::txn_markers::VerifyTxn,
    ) -> Result<crate::txn_markers::TxnVerdict, NodeError> {
        let client = self
            .peers
            .get(target)
            .ok_or_else(|| NodeError::Raft(format!("no peer {target}")))?;
        match client
            .call(
                &PeerRequest::VerifyTxn(request),
                Duration::from_millis(CONTROLLER_WRITE_TIMEOUT_MS),
            )
            .await
        {
            Ok(PeerResponse::TxnVerdict(verdict)) => Ok(verdict),
            Ok(other) => Err(NodeError::Raft(format!(
                "node {target} did not verify the transaction: {other:?}"
            ))),
            Err(e) => Err(NodeError::Raft(e.to_string())),
        }
    }

    /// Asks node `target` (the leader of the partitions named) to write transaction markers.
    pub async fn write_txn_markers(
        &self,
        target: NodeId,
        markers: crate::txn_markers::TxnMarkers,
    ) -> Result<crate::txn_markers::MarkerResults, NodeError> {
        let client = self
            .peers
            .get(target)
            .ok_or_else(|| NodeError::Raft(format!("no peer {target}")))?;
        match client
            .call(
                &PeerRequest::WriteTxnMarkers(markers),
                Duration::from_millis(CONTROLLER_WRITE_TIMEOUT_MS),
            )
            .await
        {
            Ok(PeerResponse::TxnMarkers(results)) => Ok(results),
            Ok(other) => Err(NodeError::Raft(format!(
                "node {target} did not write the markers: {other:?}"
            ))),
            Err(e) => Err(NodeError::Raft(e.to_string())),
        }
    }

    /// Asks replica `target` of `group` to campaign now (the last step of a leadership
    /// hand-over; see `config::handover_elect_delay`).
    pub async fn ask_to_elect(&self, target: NodeId, group: GroupId) -> Result<(), NodeError> {
        let client = self
            .peers
            .get(target)
            .ok_or_else(|| NodeError::Raft(format!("no peer {target}")))?;
        match client
            .call(
                &PeerRequest::ElectNow(group),
                Duration::from_millis(crate::config::HEARTBEAT_INTERVAL_MS * 5),
            )
            .await
        {
            Ok(PeerResponse::Electing) => Ok(()),
            Ok(other) => Err(NodeError::Raft(format!(
                "node {target} did not campaign: {other:?}"
            ))),
            Err(e) => Err(NodeError::Raft(e.to_string())),
        }
    }

    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), NodeError> {
        let mut rx = self.image_applied.clone();
        tokio::time::timeout_at(deadline, rx.wait_for(|i| *i >= index))
            .await
            .map_err(|_| NodeError::ControllerUnavailable(CONTROLLER_WRITE_TIMEOUT_MS))?
            .map_err(raft_err)?;
        Ok(())
    }

    /// Starts the Raft group of this node's replica of a partition, over `log` (already
    /// opened and recovered in `dir`). `hw_moved` is woken when its high watermark moves.
    pub async fn open_partition(
        &self,
        group: GroupId,
        replicas: &[NodeId],
        log: SharedLog,
        dir: &Path,
        hw_moved: Arc<Notify>,
    ) -> Result<Raft, NodeError> {
        let replica = open_replica(&self.fs, dir, log)?;
        let sm = PartitionStateMachine::new(Arc::clone(&replica), hw_moved);
        let rank = replicas
            .iter()
            .position(|id| *id == self.node_id)
            .unwrap_or(replicas.len()) as u64;
        let config = Arc::new(partition_raft_config(&group.to_string(), rank).map_err(raft_err)?);
        let raft = Raft::new(
            self.node_id,
            config,
            GroupNetwork::new(group.clone(), Arc::clone(&self.peers)),
            LogStore::with_flusher(Arc::clone(&replica), self.flusher.clone()),
            sm,
        )
        .await
        .map_err(raft_err)?;
        guard_repair(&self.groups, &group, &raft, &replica);
        self.groups.insert(group.clone(), raft.clone());
        self.replicas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(group, replica);
        initialize(&raft, replicas.iter().copied().collect()).await?;
        Ok(raft)
    }

    /// Stops a partition's group (topic deleted, or replica moved away).
    pub async fn close_partition(&self, group: &GroupId) {
        if let Some(raft) = self.groups.remove(group) {
            let _ = raft.shutdown().await;
        }
        self.replicas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(group);
    }

    /// One retention round over every partition replica of this node (`retention::apply`;
    /// never the controller's log, which is the metadata). Returns the replicas that purged.
    pub async fn apply_retention(&self, now_ms: i64) -> usize {
        let replicas: Vec<(GroupId, SharedReplica)> = self
            .replicas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(g, _)| g.topic != CONTROLLER_TOPIC)
            .map(|(g, r)| (g.clone(), Arc::clone(r)))
            .collect();
        let mut purged = 0;
        for (group, replica) in replicas {
            let Some(raft) = self.groups.get(&group) else {
                continue;
            };
            match crate::retention::apply(&raft, &replica, now_ms).await {
                Ok(Some(_)) => purged += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%group, error = %e, "retention of a replicated log failed")
                }
            }
        }
        purged
    }

    /// Writes every group's commit point (periodically and at shutdown).
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let replicas: Vec<SharedReplica> = self
            .replicas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for r in replicas {
            lock(&r).checkpoint()?;
        }
        Ok(())
    }

    /// Stops every group and the peer listener, then writes the commit points.
    pub async fn shutdown(&self) -> Result<(), StorageError> {
        for (_, raft) in self.groups.all() {
            let _ = raft.shutdown().await;
        }
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
        self.checkpoint()
    }
}

/// Why `raft` stopped, if it stopped because its storage failed (not when it was shut down).
pub fn storage_failure(raft: &Raft) -> Option<String> {
    match &raft.metrics().borrow().running_state {
        Err(e @ (openraft::error::Fatal::StorageError(_) | openraft::error::Fatal::Panicked)) => {
            Some(e.to_string())
        }
        _ => None,
    }
}
