//! A partition hosted by this broker: its identity, its log behind a lock, and in a cluster
//! the Raft group of its replica on this node.

use crate::isr::IsrTracker;
use chronik_replication::proposer::Proposer;
use chronik_replication::types::Raft;
use chronik_replication::SharedLog;
use chronik_storage::PartitionLog;
use chronik_types::limits::REPLICA_LAG_TIME_MAX_MS;
use chronik_types::TopicPartition;
use std::sync::{Arc, Mutex, PoisonError};

/// What this node is for a partition right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Single node: the log is written here directly.
    Local,
    /// The Raft leader of the partition, in `epoch` (the Raft term).
    Leader { epoch: i32 },
    /// A follower (or a replica with no known leader).
    Follower { leader: Option<u64>, epoch: i32 },
}

pub struct Partition {
    pub tp: TopicPartition,
    log: SharedLog,
    /// The partition's Raft group on this node (cluster mode).
    raft: Option<Raft>,
    /// Queues produced batches to the Raft leader in arrival order (cluster mode).
    proposer: Option<Proposer>,
    /// Which replicas are in sync while this node leads (cluster mode).
    isr: Mutex<IsrTracker>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("tp", &self.tp)
            .field("replicated", &self.raft.is_some())
            .finish()
    }
}

impl Partition {
    pub fn new(tp: TopicPartition, log: PartitionLog) -> Self {
        Self {
            tp,
            log: Arc::new(Mutex::new(log)),
            raft: None,
            proposer: None,
            isr: Mutex::default(),
        }
    }

    /// A replica of a replicated partition: `log` is shared with its Raft group. Must run in
    /// a tokio runtime (it starts the proposer).
    pub fn replicated(tp: TopicPartition, log: SharedLog, raft: Raft) -> Self {
        Self {
            tp,
            log,
            proposer: Some(Proposer::start(raft.clone())),
            raft: Some(raft),
            isr: Mutex::default(),
        }
    }

    pub fn proposer(&self) -> Option<&Proposer> {
        self.proposer.as_ref()
    }

    pub fn raft(&self) -> Option<&Raft> {
        self.raft.as_ref()
    }

    pub fn role(&self) -> Role {
        let Some(raft) = &self.raft else {
            return Role::Local;
        };
        let m = raft.metrics();
        let m = m.borrow();
        let epoch = i32::try_from(m.current_term).unwrap_or(i32::MAX);
        if m.state.is_leader() {
            Role::Leader { epoch }
        } else {
            Role::Follower {
                leader: m.current_leader,
                epoch,
            }
        }
    }

    /// Records one sample of the leader's replication progress (cluster mode, periodically).
    pub fn sample_isr(&self, now_ms: i64) {
        let Some(raft) = &self.raft else { return };
        let m = raft.metrics();
        let m = m.borrow();
        if !m.state.is_leader() {
            return;
        }
        let Some(rep) = &m.replication else { return };
        let matched: Vec<(u64, Option<u64>)> = rep
            .iter()
            .filter(|(id, _)| **id != m.id)
            .map(|(id, l)| (*id, l.map(|l| l.index)))
            .collect();
        self.isr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sample(
                m.current_term,
                m.last_log_index.unwrap_or(0),
                matched,
                now_ms,
            );
    }

    /// The in-sync replicas among `replicas` while this node (`me`) leads; all of them when it
    /// does not (it cannot know; Metadata reports the replica set then).
    pub fn in_sync_replicas(&self, me: u64, replicas: &[u64], now_ms: i64) -> Vec<u64> {
        let Role::Leader { epoch } = self.role() else {
            return replicas.to_vec();
        };
        let term = u64::try_from(epoch).unwrap_or(0);
        self.isr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_sync(term, me, replicas, now_ms, REPLICA_LAG_TIME_MAX_MS)
    }

    /// Whether Kafka clients may produce to and fetch from this replica.
    pub fn serves_clients(&self) -> bool {
        matches!(self.role(), Role::Local | Role::Leader { .. })
    }

    /// Runs `f` with the log locked. Critical sections are short: page-cache writes and header
    /// reads only; fsync and fetch reads happen outside the lock.
    pub fn with_log<R>(&self, f: impl FnOnce(&mut PartitionLog) -> R) -> R {
        let mut guard = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}
