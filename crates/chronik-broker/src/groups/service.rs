//! `GroupService`: runs coordinator operations one at a time. An operation's records are
//! appended to `__consumer_offsets` and fsynced before its effects become visible and before
//! any response built from it is sent.

use super::offsets_topic::{
    by_partition, encode_batch, load_partition, Loaded, OFFSETS_TOPIC_PARTITIONS,
};
use crate::broker::{now_ms, Broker};
use crate::error::BrokerError;
use crate::internal_topic::{start_store, wait_all, PartitionCoordinator};
use crate::partition::{Partition, Role};
use crate::topics::{Topic, CONSUMER_OFFSETS_TOPIC};
use chronik_group::records::partition_for;
use chronik_group::{
    error, CoordinatorConfig, GroupCoordinator, GroupRecord, Output, Reply, ReplyTo,
};
use chronik_types::limits::OFFSETS_COMMIT_TIMEOUT_MS;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::{oneshot, Mutex, MutexGuard, Notify};

/// Shortest wait between two timer rounds (bounds the cost of a deadline that cannot be cleared,
/// e.g. while the offsets topic is offline).
const TIMER_RESOLUTION_MS: u64 = 10;
/// Records beyond twice the live state that a `__consumer_offsets` partition may hold before
/// it is compacted.
const OFFSETS_SNAPSHOT_MIN_RECORDS: i64 = 10_000;
/// Records per batch when writing a snapshot.
const OFFSETS_SNAPSHOT_BATCH_RECORDS: usize = 1_000;

pub struct GroupService {
    state: Mutex<GroupCoordinator>,
    waiters: std::sync::Mutex<HashMap<ReplyTo, oneshot::Sender<Reply>>>,
    next_token: AtomicU64,
    /// Wakes the timer task when deadlines may have changed.
    changed: Notify,
    /// Cluster mode: the `__consumer_offsets` partitions this node leads and whose groups it
    /// has loaded from the replicated log.
    loaded: std::sync::Mutex<BTreeSet<i32>>,
}

impl GroupService {
    /// Builds the coordinator by replaying what `__consumer_offsets` holds (start-up).
    pub fn load(
        config: CoordinatorConfig,
        offsets_topic: Option<&Topic>,
        now_ms: i64,
    ) -> Result<Self, BrokerError> {
        let mut coordinator = GroupCoordinator::new(config);
        let records = crate::internal_topic::load_all(offsets_topic, load_partition)?;
        replay_loaded(&mut coordinator, &records, now_ms);
        if !records.is_empty() {
            tracing::info!(
                records = records.len(),
                groups = coordinator.groups.len(),
                "loaded consumer groups"
            );
        }
        Ok(Self {
            state: Mutex::new(coordinator),
            waiters: std::sync::Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            changed: Notify::new(),
            loaded: std::sync::Mutex::new(BTreeSet::new()),
        })
    }

    /// Cluster mode: why this node cannot coordinate `group_id` now (NOT_COORDINATOR when
    /// another node leads its `__consumer_offsets` partition, COORDINATOR_LOAD_IN_PROGRESS
    /// while its groups are being loaded), or `None` when it can (always on a single node).
    pub fn coordinator_error(&self, broker: &Broker, group_id: &str) -> Option<i16> {
        broker.cluster.as_ref()?;
        if self.ensure_offsets_topic(broker).is_err() {
            return Some(error::COORDINATOR_NOT_AVAILABLE);
        }
        let p = partition_for(group_id, OFFSETS_TOPIC_PARTITIONS);
        let partition = match broker.partition(CONSUMER_OFFSETS_TOPIC, p) {
            Ok(partition) => partition,
            // Another node hosts the group's offsets partition.
            Err(BrokerError::NotLeaderOrFollower) => return Some(error::NOT_COORDINATOR),
            Err(_) => return Some(error::COORDINATOR_NOT_AVAILABLE),
        };
        match partition.role() {
            // Handing the offsets partition to its preferred replica: that node coordinates next.
            Role::Leader { .. } if !partition.accepts_writes() => Some(error::NOT_COORDINATOR),
            Role::Leader { .. } if self.is_loaded(p) => None,
            Role::Leader { .. } => Some(error::COORDINATOR_LOAD_IN_PROGRESS),
            _ => Some(error::NOT_COORDINATOR),
        }
    }

    /// Creates `__consumer_offsets` on first use, as Kafka does.
    pub fn ensure_offsets_topic(&self, broker: &Broker) -> Result<(), BrokerError> {
        if broker.topic(CONSUMER_OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert("segment.bytes".to_string(), (100 * 1024 * 1024).to_string());
        // Replicated like any topic in a cluster (default replication factor).
        let rf = if broker.cluster.is_some() { -1 } else { 1 };
        match broker.create_topic(
            CONSUMER_OFFSETS_TOPIC,
            OFFSETS_TOPIC_PARTITIONS,
            rf,
            configs,
        ) {
            Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Registers a waiter for a delayed reply.
    pub fn waiter(&self) -> (ReplyTo, oneshot::Receiver<Reply>) {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, tx);
        (token, rx)
    }

    /// Runs `op` on the coordinator, makes its records durable, applies them and delivers its
    /// replies. Returns `op`'s own result and whether the records were stored.
    pub async fn run<R>(
        &self,
        broker: &Broker,
        op: impl FnOnce(&mut GroupCoordinator, i64) -> (R, Output),
    ) -> (R, bool) {
        let mut st = self.state.lock().await;
        let now = now_ms();
        // Deadlines that are due fire first (the timer task may not have run yet): a request
        // never sees a session that has already expired.
        let due = st.tick(now);
        if !due.records.is_empty() || !due.replies.is_empty() {
            self.finish(broker, &mut st, due, now).await;
        }
        let (result, out) = op(&mut st, now);
        let stored = self.finish(broker, &mut st, out, now).await;
        self.changed.notify_one();
        (result, stored)
    }

    /// Read-only access for describe/list/fetch operations.
    pub async fn read(&self) -> MutexGuard<'_, GroupCoordinator> {
        self.state.lock().await
    }

    async fn finish(
        &self,
        broker: &Broker,
        st: &mut GroupCoordinator,
        out: Output,
        now: i64,
    ) -> bool {
        let stored = match self.append(broker, &out.records, now).await {
            Ok(()) => {
                st.apply_written(&out.records, now);
                self.compact(broker, st, &out.records, now).await;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "could not store group records");
                false
            }
        };
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        for (to, reply) in out.replies {
            let reply = if stored { reply } else { failed(reply) };
            if let Some(tx) = waiters.remove(&to) {
                let _ = tx.send(reply);
            }
        }
        stored
    }

    async fn append(
        &self,
        broker: &Broker,
        records: &[GroupRecord],
        now: i64,
    ) -> Result<(), BrokerError> {
        self.store(broker, records, None, now).await
    }

    /// Stores `records` in `__consumer_offsets` (with `producer`: inside its transaction).
    async fn store(
        &self,
        broker: &Broker,
        records: &[GroupRecord],
        producer: Option<(i64, i16)>,
        now: i64,
    ) -> Result<(), BrokerError> {
        if records.is_empty() {
            return Ok(());
        }
        self.ensure_offsets_topic(broker)?;
        let mut pending = Vec::new();
        for (partition, recs) in by_partition(records) {
            let p = broker.partition(CONSUMER_OFFSETS_TOPIC, partition)?;
            let batch = encode_batch(&recs, producer, now)?;
            pending.push(start_store(broker, &p, batch, now)?);
        }
        wait_all(pending, OFFSETS_COMMIT_TIMEOUT_MS, "group records").await
    }

    /// TxnOffsetCommit: validates like OffsetCommit, stores the offsets inside the producer's
    /// transaction, and keeps them pending until its marker. Returns one code per offset.
    pub async fn commit_txn_offsets(
        &self,
        broker: &Broker,
        req: &chronik_group::OffsetCommitRequest,
        producer: (i64, i16),
    ) -> Vec<i16> {
        let mut st = self.state.lock().await;
        let now = now_ms();
        let (codes, records) = st.txn_commit_offsets(req, now);
        match self.store(broker, &records, Some(producer), now).await {
            Ok(()) => {
                st.add_pending_txn_offsets(producer.0, &records);
                codes
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not store transactional offsets");
                vec![e.code(); codes.len()]
            }
        }
    }

    /// A transaction marker of `producer_id` was stored in `__consumer_offsets` partition
    /// `partition`: the transaction's offsets of that partition's groups take effect or are
    /// dropped.
    pub async fn complete_txn_offsets(&self, producer_id: i64, commit: bool, partition: i32) {
        self.state.lock().await.complete_txn_offsets(
            producer_id,
            commit,
            |g| partition_for(g, OFFSETS_TOPIC_PARTITIONS) == partition,
            now_ms(),
        );
    }

    /// Keeps `__consumer_offsets` bounded: when a partition holds far more records than its
    /// groups' live state, that state is written again as a snapshot and the log start moves
    /// to it, so old segments can be deleted (a stand-in for log compaction).
    async fn compact(
        &self,
        broker: &Broker,
        st: &GroupCoordinator,
        written: &[GroupRecord],
        now: i64,
    ) {
        if broker.cluster.is_some() {
            return; // moving a replicated log's start is not replicated yet
        }
        for partition in by_partition(written).into_keys() {
            let Ok(p) = broker.partition(CONSUMER_OFFSETS_TOPIC, partition) else {
                continue;
            };
            let in_partition = |g: &str| partition_for(g, OFFSETS_TOPIC_PARTITIONS) == partition;
            if st.has_pending_txn_offsets(in_partition) {
                // A snapshot would move the log start past the transactional batch that holds
                // them, and a restart would then find their marker with nothing to commit.
                continue;
            }
            let (log_start, _, log_end) = Broker::offsets(&p);
            let snapshot = st.snapshot(|g| partition_for(g, OFFSETS_TOPIC_PARTITIONS) == partition);
            let live = i64::try_from(snapshot.len()).unwrap_or(i64::MAX);
            if log_end - log_start <= 2 * live + OFFSETS_SNAPSHOT_MIN_RECORDS {
                continue;
            }
            let result = async {
                let snapshot_start = p.with_log(|l| l.log_end_offset());
                for chunk in snapshot.chunks(OFFSETS_SNAPSHOT_BATCH_RECORDS) {
                    let refs: Vec<&GroupRecord> = chunk.iter().collect();
                    let mut batch = encode_batch(&refs, None, now)?;
                    p.with_log(|l| l.append(&mut batch, now))?;
                }
                broker
                    .group_commit
                    .request(Arc::clone(&p))
                    .wait()
                    .await
                    .map_err(BrokerError::InvalidRequest)?;
                p.with_log(|l| l.delete_records_before(snapshot_start))?;
                broker.write_checkpoints()?;
                Ok::<_, BrokerError>(snapshot_start)
            };
            match result.await {
                Ok(start) => {
                    tracing::info!(partition = %p.tp, log_start_offset = start, live, "compacted group records")
                }
                Err(e) => {
                    tracing::warn!(partition = %p.tp, error = %e, "could not compact group records")
                }
            }
        }
    }

    /// Fires the coordinator's deadlines until `stop` says so.
    pub async fn run_timers(self: Arc<Self>, broker: Arc<Broker>) {
        loop {
            let next = self.state.lock().await.next_deadline();
            let changed = self.changed.notified();
            match next {
                Some(deadline) => {
                    let wait_ms = u64::try_from(deadline - now_ms())
                        .unwrap_or(0)
                        .max(TIMER_RESOLUTION_MS);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                        _ = changed => continue,
                    }
                }
                None => {
                    changed.await;
                    continue;
                }
            }
            if broker.is_shutting_down() {
                return;
            }
            self.run(&broker, |c, now| ((), c.tick(now))).await;
        }
    }
}

impl PartitionCoordinator for GroupService {
    fn is_loaded(&self, partition: i32) -> bool {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&partition)
    }

    async fn load(&self, partition: &Partition) {
        let p = partition.tp.partition;
        let mut st = self.state.lock().await;
        let records = match load_partition(partition) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(partition = %partition.tp, error = %e, "cannot load consumer groups");
                return;
            }
        };
        st.remove_groups(|g| partition_for(g, OFFSETS_TOPIC_PARTITIONS) == p);
        replay_loaded(&mut st, &records, now_ms());
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(p);
        self.changed.notify_one();
        tracing::info!(partition = %partition.tp, records = records.len(), "coordinating the partition's consumer groups");
    }

    async fn unload(&self, p: i32) {
        let mut st = self.state.lock().await;
        st.remove_groups(|g| partition_for(g, OFFSETS_TOPIC_PARTITIONS) == p);
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&p);
        self.changed.notify_one();
    }
}

/// Rebuilds state from what `__consumer_offsets` holds, in log order.
fn replay_loaded(st: &mut GroupCoordinator, loaded: &[Loaded], now_ms: i64) {
    for l in loaded {
        match l {
            Loaded::Record(r) => st.replay(r, now_ms),
            Loaded::Pending {
                producer_id,
                record,
            } => st.add_pending_txn_offsets(*producer_id, std::slice::from_ref(record)),
            Loaded::Marker {
                producer_id,
                commit,
                partition,
            } => st.complete_txn_offsets(
                *producer_id,
                *commit,
                |g| partition_for(g, OFFSETS_TOPIC_PARTITIONS) == *partition,
                now_ms,
            ),
        }
    }
}

/// A reply whose records could not be stored: the client retries elsewhere.
fn failed(reply: Reply) -> Reply {
    match reply {
        Reply::Join(mut j) => {
            j.error_code = error::COORDINATOR_NOT_AVAILABLE;
            Reply::Join(j)
        }
        Reply::Sync(mut s) => {
            s.error_code = error::COORDINATOR_NOT_AVAILABLE;
            Reply::Sync(s)
        }
    }
}
