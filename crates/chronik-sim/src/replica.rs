//! One simulated replica: the real partition log, Raft log storage and state machine in its
//! own directory, on a fault-injecting file system whose `crash` loses what was not fsynced.

use crate::network::SimNetwork;
use chronik_replication::config::partition_raft_config;
use chronik_replication::log_store::PlantedBug;
use chronik_replication::replica_log::lock_log;
use chronik_replication::types::{NodeId, Raft};
use chronik_replication::{LogStore, PartitionStateMachine, ReplicaLog, SharedLog, SharedReplica};
use chronik_storage::config::LogConfig;
use chronik_storage::faults::FaultyFileSystem;
use chronik_storage::PartitionLog;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub type SimError = Box<dyn std::error::Error + Send + Sync>;

pub struct Running {
    pub raft: Raft,
    pub log: SharedLog,
    pub replica: SharedReplica,
}

pub struct SimReplica {
    pub id: NodeId,
    /// Place in the replica set (ranks the election timeouts).
    pub rank: u64,
    pub dir: PathBuf,
    pub fs: FaultyFileSystem,
    pub running: Option<Running>,
    /// Incremented at every start: high-watermark monotonicity is checked per incarnation.
    pub incarnation: u64,
    /// The partition's topic configs (small segments and retention in retention runs).
    pub log_config: LogConfig,
}

impl SimReplica {
    pub fn new(id: NodeId, rank: u64, dir: PathBuf, log_config: LogConfig) -> Self {
        // Durability is modelled (what `crash` keeps), not asked of the disk: runs do not
        // depend on the disk's fsync speed.
        let fs = FaultyFileSystem::new();
        fs.set_plan(chronik_storage::faults::FaultPlan {
            modelled_sync: true,
            ..Default::default()
        });
        Self {
            id,
            rank,
            dir,
            fs,
            running: None,
            incarnation: 0,
            log_config,
        }
    }

    /// Opens the replica from its directory (recovery) and starts its Raft.
    pub async fn start(
        &mut self,
        net: &SimNetwork,
        planted: Option<PlantedBug>,
    ) -> Result<(), SimError> {
        let fs: Arc<dyn chronik_storage::fs::FileSystem> = Arc::new(self.fs.clone());
        let (log, _) =
            PartitionLog::open_on(Arc::clone(&fs), &self.dir, self.log_config.clone(), 0, 0, 0)?;
        let log: SharedLog = Arc::new(Mutex::new(log));
        let replica = ReplicaLog::open(fs, &self.dir, Arc::clone(&log), 0)?;
        let replica = Arc::new(Mutex::new(replica));
        let sm = PartitionStateMachine::new(Arc::clone(&replica), Arc::new(Notify::new()));
        let mut config = partition_raft_config("sim-0", self.rank)?;
        // One election timeout per member (no draw): determinism does not rest on openraft's
        // own random generator.
        config.election_timeout_max = config.election_timeout_min + 1;
        let store = LogStore::new(Arc::clone(&replica)).with_planted_bug(planted);
        let raft = Raft::new(self.id, Arc::new(config), net.factory(self.id), store, sm).await?;
        net.up(self.id, raft.clone());
        self.incarnation += 1;
        self.running = Some(Running { raft, log, replica });
        Ok(())
    }

    /// Power loss: the node stops at once and every file loses what was not fsynced (the
    /// unsynced tail is cut at `keep_unsynced` of its length).
    pub async fn crash(&mut self, net: &SimNetwork, keep_unsynced: f64) -> Result<(), SimError> {
        net.down(self.id);
        if let Some(r) = self.running.take() {
            let _ = r.raft.shutdown().await;
            self.fs
                .crash(|_, unsynced| (unsynced as f64 * keep_unsynced) as u64)?;
            drop(r);
        }
        Ok(())
    }

    pub fn high_watermark(&self) -> Option<i64> {
        self.running
            .as_ref()
            .map(|r| lock_log(&r.log).high_watermark())
    }

    /// Every stored batch with its bytes, in offset order.
    pub fn batches(&self) -> Result<Vec<(i64, Vec<u8>)>, SimError> {
        let Some(r) = &self.running else {
            return Ok(Vec::new());
        };
        let log = lock_log(&r.log);
        let mut out = Vec::new();
        for loc in log.batch_locations()? {
            out.push((loc.base_offset, log.read_batch_at(loc.base_offset)?));
        }
        Ok(out)
    }
}
