//! `TxnService`: runs transaction coordinator operations one at a time. An operation's records
//! are stored in `__transaction_state` before its effects become visible and before it is
//! answered; a decided transaction's markers are written before it is completed.

use super::markers;
use super::state_topic::{self, partition_of, TXN_STATE_PARTITIONS};
use crate::broker::{now_ms, Broker};
use crate::error::BrokerError;
use crate::internal_topic::{start_store, wait_all, PartitionCoordinator};
use crate::partition::{Partition, Role};
use crate::topics::{Topic, TRANSACTION_STATE_TOPIC};
use chronik_replication::transport::GroupId;
use chronik_replication::txn_markers::{TxnVerdict, VerifyTxn};
use chronik_txn::coordinator::EndStep;
use chronik_txn::{
    Completion, CoordinatorConfig, InitStep, TransactionCoordinator, TxnError, TxnRecord,
};
use chronik_types::limits::TXN_STATE_WRITE_TIMEOUT_MS;
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, Notify};

/// How often decided transactions whose markers could not all be written are retried.
const MARKER_RETRY_MS: u64 = 500;
/// Shortest wait between two timer rounds.
const TIMER_RESOLUTION_MS: u64 = 10;

pub struct TxnService {
    state: Mutex<TransactionCoordinator>,
    /// Wakes the timer task when deadlines may have changed.
    changed: Notify,
    /// Cluster mode: the `__transaction_state` partitions this node leads and has loaded.
    loaded: std::sync::Mutex<BTreeSet<i32>>,
    /// Each transactional id's current producer and open transaction, as stored: read by
    /// produce, under the partition's log lock, to verify that a transaction's first batch in
    /// a partition belongs to an open transaction that includes the partition (KIP-890 part 1).
    open: RwLock<HashMap<String, CurrentTxn>>,
}

/// A transactional id's producer and open transaction as produce verification sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CurrentTxn {
    producer_id: i64,
    producer_epoch: i16,
    /// The partitions of the open transaction; `None` when none is open.
    partitions: Option<BTreeSet<(String, i32)>>,
}

/// What verification of a transactional batch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The producer's open transaction includes the partition.
    InTransaction,
    /// It does not (the transaction ended, or the partition was never added).
    NotInTransaction,
    /// The batch's producer id or epoch is not the id's current one: a fenced producer.
    Fenced,
    /// Another node coordinates this transactional id: not checked here.
    Elsewhere,
}

impl TxnService {
    /// Builds the coordinator by replaying what `__transaction_state` holds (start-up).
    pub fn load(config: CoordinatorConfig, topic: Option<&Topic>) -> Result<Self, BrokerError> {
        let mut coordinator = TransactionCoordinator::new(config);
        let records = crate::internal_topic::load_all(topic, state_topic::load_partition)?;
        coordinator.apply(&records);
        if !records.is_empty() {
            tracing::info!(records = records.len(), "loaded transactions");
        }
        let service = Self {
            state: Mutex::new(coordinator),
            changed: Notify::new(),
            loaded: std::sync::Mutex::new(BTreeSet::new()),
            open: RwLock::new(HashMap::new()),
        };
        if let Ok(st) = service.state.try_lock() {
            service.reindex(&st, st.transactions().map(|(id, _)| id.clone()).collect());
        }
        Ok(service)
    }

    /// Updates the open-transaction index for `ids` from the coordinator's state.
    fn reindex(&self, st: &TransactionCoordinator, ids: Vec<String>) {
        let mut open = self.open.write().unwrap_or_else(PoisonError::into_inner);
        for id in ids {
            match st.get(&id) {
                Some(m) => {
                    let ongoing = m.state == chronik_txn::TxnState::Ongoing;
                    open.insert(
                        id,
                        CurrentTxn {
                            producer_id: m.producer_id,
                            producer_epoch: m.producer_epoch,
                            partitions: ongoing.then(|| m.partitions.clone()),
                        },
                    );
                }
                None => {
                    open.remove(&id);
                }
            }
        }
    }

    /// Whether the open transaction of `transactional_id` (with this producer id and epoch)
    /// includes `topic`/`partition`. Cheap and synchronous: called under a log lock.
    pub fn verify(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer: (i64, i16),
        topic: &str,
        partition: i32,
    ) -> Verification {
        if broker.cluster.is_some() && !self.is_loaded(partition_of(transactional_id)) {
            return Verification::Elsewhere;
        }
        let open = self.open.read().unwrap_or_else(PoisonError::into_inner);
        let Some(t) = open.get(transactional_id) else {
            return Verification::NotInTransaction;
        };
        if (t.producer_id, t.producer_epoch) != producer {
            // Another producer id, or an older epoch: a zombie. (A newer epoch than the stored
            // one cannot be a legitimate producer's either.)
            return Verification::Fenced;
        }
        match &t.partitions {
            Some(ps) if ps.contains(&(topic.to_string(), partition)) => Verification::InTransaction,
            _ => Verification::NotInTransaction,
        }
    }

    /// `verify`, asking the coordinator's node when it is another one (a peer request); never
    /// `Elsewhere`. An error when the coordinator cannot be asked (unknown, unreachable, or no
    /// longer coordinating).
    pub async fn verify_anywhere(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer: (i64, i16),
        tp: &chronik_types::TopicPartition,
    ) -> Result<Verification, BrokerError> {
        match self.verify(broker, transactional_id, producer, &tp.topic, tp.partition) {
            Verification::Elsewhere => {}
            found => return Ok(found),
        }
        let unavailable = |why: String| BrokerError::CoordinatorNotAvailable(why);
        let node = broker
            .cluster
            .as_ref()
            .ok_or_else(|| unavailable("no cluster".into()))?;
        let (coordinator, _) = broker
            .partition_leader(TRANSACTION_STATE_TOPIC, partition_of(transactional_id))
            .ok_or_else(|| unavailable("the transaction coordinator is not known".into()))?;
        let request = VerifyTxn {
            transactional_id: transactional_id.to_string(),
            producer_id: producer.0,
            producer_epoch: producer.1,
            partition: GroupId::new(tp.topic.clone(), tp.partition),
        };
        match node.verify_txn(coordinator, request).await {
            Ok(TxnVerdict::InTransaction) => Ok(Verification::InTransaction),
            Ok(TxnVerdict::NotInTransaction) => Ok(Verification::NotInTransaction),
            Ok(TxnVerdict::Fenced) => Ok(Verification::Fenced),
            Ok(TxnVerdict::NotCoordinator) => Err(unavailable(format!(
                "node {coordinator} no longer coordinates {transactional_id}"
            ))),
            Err(e) => Err(unavailable(e.to_string())),
        }
    }

    /// Creates `__transaction_state` on first use, as Kafka does.
    pub fn ensure_state_topic(&self, broker: &Broker) -> Result<(), BrokerError> {
        if broker.topic(TRANSACTION_STATE_TOPIC).is_some() {
            return Ok(());
        }
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert("segment.bytes".to_string(), (100 * 1024 * 1024).to_string());
        let rf = if broker.cluster.is_some() { -1 } else { 1 };
        match broker.create_topic(TRANSACTION_STATE_TOPIC, TXN_STATE_PARTITIONS, rf, configs) {
            Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Why this node cannot coordinate `transactional_id` now (NOT_COORDINATOR,
    /// COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE), or `None` when it can.
    pub fn coordinator_error(&self, broker: &Broker, transactional_id: &str) -> Option<i16> {
        let not_available = ResponseError::CoordinatorNotAvailable.code();
        if self.ensure_state_topic(broker).is_err() {
            return Some(not_available);
        }
        broker.cluster.as_ref()?;
        let p = partition_of(transactional_id);
        let partition = match broker.partition(TRANSACTION_STATE_TOPIC, p) {
            Ok(partition) => partition,
            Err(BrokerError::NotLeaderOrFollower) => {
                return Some(ResponseError::NotCoordinator.code())
            }
            Err(_) => return Some(not_available),
        };
        match partition.role() {
            Role::Leader { .. } if !partition.accepts_writes() => {
                Some(ResponseError::NotCoordinator.code())
            }
            Role::Leader { .. } if self.is_loaded(p) => None,
            Role::Leader { .. } => Some(ResponseError::CoordinatorLoadInProgress.code()),
            _ => Some(ResponseError::NotCoordinator.code()),
        }
    }

    /// Read-only access (DescribeTransactions, ListTransactions).
    pub async fn read(&self) -> MutexGuard<'_, TransactionCoordinator> {
        self.state.lock().await
    }

    /// InitProducerId with a transactional id: the producer id and epoch to use. An open
    /// transaction of an earlier producer with this id is aborted first.
    pub async fn init_producer_id(
        &self,
        broker: &Broker,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), BrokerError> {
        let mut st = self.state.lock().await;
        // At most: abort the open transaction, then initialise.
        for _ in 0..2 {
            let step =
                st.init_producer_id(transactional_id, timeout_ms, expected, now_ms(), || {
                    broker.allocate_producer_id().ok()
                })?;
            match step {
                InitStep::Ready {
                    records,
                    producer_id,
                    producer_epoch,
                } => {
                    self.store(broker, &mut st, &records).await?;
                    return Ok((producer_id, producer_epoch));
                }
                InitStep::AbortFirst { records, abort } => {
                    self.store(broker, &mut st, &records).await?;
                    if let Err(e) = self.complete(broker, &mut st, &abort).await {
                        tracing::warn!(transactional_id, error = %e, "could not abort the open transaction yet");
                        return Err(TxnError::ConcurrentTransactions.into());
                    }
                }
            }
        }
        Err(TxnError::ConcurrentTransactions.into())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn.
    pub async fn add_partitions(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: &[(String, i32)],
    ) -> Result<(), BrokerError> {
        let mut st = self.state.lock().await;
        let records = st.add_partitions(
            transactional_id,
            producer.0,
            producer.1,
            partitions,
            now_ms(),
        )?;
        self.store(broker, &mut st, &records).await?;
        self.changed.notify_one();
        Ok(())
    }

    /// EndTxn: stores the decision, writes the markers, completes. The decision stands once
    /// stored: markers that cannot be written now are retried by the timer.
    pub async fn end_txn(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer: (i64, i16),
        commit: bool,
    ) -> Result<(), BrokerError> {
        let mut st = self.state.lock().await;
        let step = st.end_txn(transactional_id, producer.0, producer.1, commit, now_ms())?;
        let EndStep::Prepare {
            records,
            completion,
        } = step
        else {
            return Ok(());
        };
        self.store(broker, &mut st, &records).await?;
        if let Err(e) = self.complete(broker, &mut st, &completion).await {
            tracing::warn!(transactional_id, error = %e, "transaction markers not written yet; retrying");
        }
        self.changed.notify_one();
        Ok(())
    }

    /// Writes the markers of a decided transaction and stores its completion.
    async fn complete(
        &self,
        broker: &Broker,
        st: &mut TransactionCoordinator,
        c: &Completion,
    ) -> Result<(), BrokerError> {
        if let Some(code) = self.coordinator_error(broker, &c.transactional_id) {
            // No longer this id's coordinator (its state partition moved): the new one
            // completes the transaction; markers from here could end a later one.
            return Err(BrokerError::InvalidRequest(format!(
                "not the coordinator of {} any more (error {code})",
                c.transactional_id
            )));
        }
        let epoch = self.coordinator_epoch(broker, &c.transactional_id);
        markers::write(broker, c, epoch).await?;
        let records = st.complete(c, now_ms());
        self.store(broker, st, &records).await
    }

    /// The leader epoch of the id's `__transaction_state` partition (0 on a single node).
    fn coordinator_epoch(&self, broker: &Broker, transactional_id: &str) -> i32 {
        broker
            .partition(TRANSACTION_STATE_TOPIC, partition_of(transactional_id))
            .ok()
            .and_then(|p| match p.role() {
                Role::Leader { epoch } => Some(epoch),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// Stores `records` in `__transaction_state`, then applies them.
    async fn store(
        &self,
        broker: &Broker,
        st: &mut TransactionCoordinator,
        records: &[TxnRecord],
    ) -> Result<(), BrokerError> {
        if records.is_empty() {
            return Ok(());
        }
        self.ensure_state_topic(broker)?;
        let now = now_ms();
        let mut pending = Vec::new();
        let unavailable = |e: BrokerError| BrokerError::CoordinatorNotAvailable(e.to_string());
        for (partition, batch) in state_topic::batches(records, now)? {
            let p = broker
                .partition(TRANSACTION_STATE_TOPIC, partition)
                .map_err(unavailable)?;
            pending.push(start_store(broker, &p, batch, now).map_err(unavailable)?);
        }
        wait_all(pending, TXN_STATE_WRITE_TIMEOUT_MS, "transaction state")
            .await
            .map_err(|e| BrokerError::CoordinatorNotAvailable(e.to_string()))?;
        st.apply(records);
        self.reindex(
            st,
            records.iter().map(|r| r.transactional_id.clone()).collect(),
        );
        Ok(())
    }

    /// Aborts transactions past their timeout, forgets expired ids and retries unfinished
    /// markers, until the broker shuts down.
    pub async fn run_timers(self: Arc<Self>, broker: Arc<Broker>) {
        loop {
            let (next, preparing) = {
                let st = self.state.lock().await;
                (st.next_deadline(), !st.preparing().is_empty())
            };
            let changed = self.changed.notified();
            let mut wait_ms = next.map(|d| u64::try_from(d - now_ms()).unwrap_or(0));
            if preparing {
                wait_ms = Some(wait_ms.map_or(MARKER_RETRY_MS, |w| w.min(MARKER_RETRY_MS)));
            }
            match wait_ms {
                Some(ms) => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(ms.max(TIMER_RESOLUTION_MS))) => {}
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
            self.tick(&broker).await;
        }
    }

    async fn tick(&self, broker: &Broker) {
        let mut st = self.state.lock().await;
        let (records, timed_out) = st.tick(now_ms());
        // One id at a time: a state partition that cannot be written holds back only its ids.
        for r in records {
            if let Err(e) = self.store(broker, &mut st, std::slice::from_ref(&r)).await {
                tracing::warn!(transactional_id = %r.transactional_id, error = %e, "could not store a timed-out or expired transaction");
            }
        }
        for c in &timed_out {
            tracing::info!(transactional_id = %c.transactional_id, producer_id = c.producer_id, "aborting a transaction past its timeout");
        }
        // Every decided transaction not yet complete: those just timed out, and those whose
        // markers failed before (or that were decided before a restart or failover).
        for c in st.preparing() {
            if let Err(e) = self.complete(broker, &mut st, &c).await {
                tracing::debug!(transactional_id = %c.transactional_id, error = %e, "transaction markers not written yet");
            }
        }
    }
}

impl PartitionCoordinator for TxnService {
    fn is_loaded(&self, partition: i32) -> bool {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&partition)
    }

    async fn load(&self, partition: &Partition) {
        let p = partition.tp.partition;
        let mut st = self.state.lock().await;
        let records = match state_topic::load_partition(partition) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(partition = %partition.tp, error = %e, "cannot load transactions");
                return;
            }
        };
        let stale: Vec<String> = st
            .transactions()
            .filter(|(id, _)| partition_of(id) == p)
            .map(|(id, _)| id.clone())
            .collect();
        st.remove_ids(|id| partition_of(id) == p);
        st.apply(&records);
        let mut ids: Vec<String> = records.iter().map(|r| r.transactional_id.clone()).collect();
        ids.extend(stale);
        self.reindex(&st, ids);
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(p);
        self.changed.notify_one();
        tracing::info!(partition = %partition.tp, records = records.len(), "coordinating the partition's transactions");
    }

    async fn unload(&self, p: i32) {
        let mut st = self.state.lock().await;
        let ids: Vec<String> = st
            .transactions()
            .filter(|(id, _)| partition_of(id) == p)
            .map(|(id, _)| id.clone())
            .collect();
        st.remove_ids(|id| partition_of(id) == p);
        self.reindex(&st, ids);
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&p);
        self.changed.notify_one();
    }
}
