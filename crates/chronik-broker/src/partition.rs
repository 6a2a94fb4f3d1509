//! A partition hosted by this broker: its identity, its log behind a lock, and in a cluster
//! the Raft group of its replica on this node.

use crate::isr::IsrTracker;
use crate::preferred_leader::{Action, PreferredLeader, ReplicaView};
use crate::txn::guards::TxnGuards;
use chronik_replication::proposer::Proposer;
use chronik_replication::types::Raft;
use chronik_replication::SharedLog;
use chronik_storage::PartitionLog;
use chronik_types::limits::{LEADER_QUORUM_ACK_TIMEOUT_MS, REPLICA_LAG_TIME_MAX_MS};
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
    /// Hand-over of the leadership to the preferred replica (cluster mode).
    preferred: Mutex<PreferredLeader>,
    /// Verification of transactional batches against their coordinator (cluster mode).
    txn_guards: TxnGuards,
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
            preferred: Mutex::default(),
            txn_guards: TxnGuards::default(),
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
            preferred: Mutex::default(),
            txn_guards: TxnGuards::default(),
        }
    }

    /// The verification guards of transactional batches (cluster mode).
    pub fn txn_guards(&self) -> &TxnGuards {
        &self.txn_guards
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
        if m.running_state.is_err() {
            // The group stopped on a fatal error (its storage failed): it neither leads nor
            // knows a leader, whatever its last metrics said.
            return Role::Follower {
                leader: None,
                epoch,
            };
        }
        let quorum_lost = m
            .millis_since_quorum_ack
            .is_some_and(|ms| ms > LEADER_QUORUM_ACK_TIMEOUT_MS);
        if m.state.is_leader() && quorum_lost {
            // Cut off from its majority (check-quorum): another leader may exist by now.
            Role::Follower {
                leader: None,
                epoch,
            }
        } else if m.state.is_leader() {
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

    /// Whether this replica takes writes (produce, group records): it serves clients and is
    /// not handing its leadership over to the preferred replica.
    pub fn accepts_writes(&self) -> bool {
        self.serves_clients() && !self.handing_over()
    }

    fn handing_over(&self) -> bool {
        self.preferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .handing_over()
    }

    /// Preferred-leader rebalancing (cluster mode, periodically): ends a hand-over that is
    /// over, and when `may_start`, starts one if this node leads and the preferred replica is
    /// back in sync. See `preferred_leader`.
    /// `answering`: whether a peer answered this node recently. Returns the preferred replica
    /// when a hand-over starts: the caller asks it to campaign once the followers' leader
    /// leases have run out.
    pub fn check_preferred_leader(
        &self,
        me: u64,
        replicas: &[u64],
        answering: impl Fn(u64) -> bool,
        now_ms: i64,
        may_start: bool,
    ) -> Option<u64> {
        let raft = self.raft.as_ref()?;
        let preferred = replicas.first().copied();
        let preferred_lag_entries = preferred.and_then(|id| {
            let m = raft.metrics();
            let m = m.borrow();
            let last = m.last_log_index.unwrap_or(0);
            let matched = m.replication.as_ref()?.get(&id)?.as_ref()?.index;
            Some(last.saturating_sub(matched))
        });
        let leading_term = match self.role() {
            Role::Leader { epoch } => u64::try_from(epoch).ok(),
            _ => None,
        };
        let in_sync = if leading_term.is_some() {
            self.in_sync_replicas(me, replicas, now_ms)
        } else {
            Vec::new()
        };
        let view = ReplicaView {
            me,
            leading_term,
            replicas,
            in_sync: &in_sync,
            preferred_answering: preferred.is_some_and(answering),
            preferred_lag_entries,
        };
        let action = self
            .preferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(view, now_ms, may_start);
        match action {
            Action::Nothing => None,
            Action::StartHandover { to } => {
                tracing::info!(partition = %self.tp, to, ?replicas, term = ?leading_term,
                    lag = ?view.preferred_lag_entries, "handing leadership to the preferred replica");
                raft.runtime_config().heartbeat(false);
                Some(to)
            }
            Action::EndHandover { moved } => {
                raft.runtime_config().heartbeat(true);
                if moved {
                    let (leader, term) = {
                        let m = raft.metrics();
                        let m = m.borrow();
                        (m.current_leader, m.current_term)
                    };
                    tracing::info!(partition = %self.tp, ?leader, term, "leadership handed over");
                } else {
                    tracing::warn!(partition = %self.tp, "preferred replica was not elected; leading on");
                }
                None
            }
        }
    }

    /// Runs `f` with the log locked. Critical sections are short: page-cache writes and header
    /// reads only; fsync and fetch reads happen outside the lock.
    pub fn with_log<R>(&self, f: impl FnOnce(&mut PartitionLog) -> R) -> R {
        let mut guard = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}
