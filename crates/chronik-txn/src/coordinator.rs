//! `TransactionCoordinator`: the state of every transactional id this node coordinates, and
//! the operations on it. An operation reads the state and returns the records that describe
//! its change; the caller stores them durably and then `apply`s them, so the state in memory is
//! never ahead of `__transaction_state`.
//!
//! A transaction ends in two steps, as in Kafka: EndTxn stores PrepareCommit/PrepareAbort (the
//! decision), the caller writes the markers to every partition of the transaction, then
//! `complete` stores CompleteCommit/CompleteAbort. Until then the id answers
//! CONCURRENT_TRANSACTIONS. A transaction open longer than its timeout is aborted with the
//! producer epoch bumped, which fences the producer that let it time out.

use crate::error::TxnError;
use crate::records::TxnRecord;
use crate::state::{TransactionMetadata, TxnState};
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `transaction.max.timeout.ms` default (15 minutes).
pub const TRANSACTION_MAX_TIMEOUT_MS: i32 = 900_000;
/// Kafka's `transactional.id.expiration.ms` default (7 days).
pub const TRANSACTIONAL_ID_EXPIRATION_MS: i64 = 604_800_000;
/// Epochs stop below this; the producer then gets a new producer id (Kafka's
/// `isEpochExhausted`: `Short.MaxValue - 1`).
const EPOCH_EXHAUSTED: i16 = i16::MAX - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorConfig {
    pub transaction_max_timeout_ms: i32,
    pub transactional_id_expiration_ms: i64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            transaction_max_timeout_ms: TRANSACTION_MAX_TIMEOUT_MS,
            transactional_id_expiration_ms: TRANSACTIONAL_ID_EXPIRATION_MS,
        }
    }
}

/// A decided transaction: write a `commit` (or abort) marker with this producer id and epoch
/// to every partition, then call `complete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
}

/// What InitProducerId must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Store `records`, then answer with this producer id and epoch.
    Ready {
        records: Vec<TxnRecord>,
        producer_id: i64,
        producer_epoch: i16,
    },
    /// The id has a transaction open: store `records` (its abort, with the epoch bumped to
    /// fence the old producer), complete `abort`, then run InitProducerId again.
    AbortFirst {
        records: Vec<TxnRecord>,
        abort: Completion,
    },
}

/// What EndTxn must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// Store `records` (the decision), then complete `completion`.
    Prepare {
        records: Vec<TxnRecord>,
        completion: Completion,
    },
    /// A retried EndTxn of a transaction already completed the same way.
    AlreadyDone,
}

#[derive(Debug, Clone, Default)]
pub struct TransactionCoordinator {
    pub config: CoordinatorConfig,
    txns: BTreeMap<String, TransactionMetadata>,
}

fn record(id: &str, m: TransactionMetadata) -> TxnRecord {
    TxnRecord {
        transactional_id: id.to_string(),
        metadata: Some(m),
    }
}

fn completion(id: &str, m: &TransactionMetadata) -> Completion {
    Completion {
        transactional_id: id.to_string(),
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        commit: m.state == TxnState::PrepareCommit,
        partitions: m.partitions.iter().cloned().collect(),
    }
}

/// `m` with its open transaction decided: abort (or commit) from here on.
fn prepare(m: &TransactionMetadata, commit: bool, now_ms: i64) -> TransactionMetadata {
    let mut next = m.clone();
    next.state = if commit {
        TxnState::PrepareCommit
    } else {
        TxnState::PrepareAbort
    };
    next.last_update_ms = now_ms;
    next
}

impl TransactionCoordinator {
    pub fn new(config: CoordinatorConfig) -> Self {
        Self {
            config,
            txns: BTreeMap::new(),
        }
    }

    /// Applies one stored record (after it was written, or while loading).
    pub fn replay(&mut self, r: &TxnRecord) {
        match &r.metadata {
            Some(m) => {
                self.txns.insert(r.transactional_id.clone(), m.clone());
            }
            None => {
                self.txns.remove(&r.transactional_id);
            }
        }
    }

    pub fn apply(&mut self, records: &[TxnRecord]) {
        for r in records {
            self.replay(r);
        }
    }

    pub fn get(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.txns.get(transactional_id)
    }

    pub fn transactions(&self) -> impl Iterator<Item = (&String, &TransactionMetadata)> {
        self.txns.iter()
    }

    /// Forgets the ids `unload` selects (their `__transaction_state` partition moved away).
    pub fn remove_ids(&mut self, unload: impl Fn(&str) -> bool) {
        self.txns.retain(|id, _| !unload(id));
    }

    /// InitProducerId with a transactional id. `expected` is the producer id and epoch the
    /// producer already has (KIP-360), if any; `allocate` hands out a new producer id.
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now_ms: i64,
        allocate: impl FnOnce() -> Option<i64>,
    ) -> Result<InitStep, TxnError> {
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let Some(m) = self.txns.get(transactional_id) else {
            let producer_id = allocate().ok_or(TxnError::ProducerIdUnavailable)?;
            let m = TransactionMetadata {
                producer_id,
                last_producer_id: -1,
                producer_epoch: 0,
                last_producer_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now_ms,
            };
            return Ok(InitStep::Ready {
                records: vec![record(transactional_id, m)],
                producer_id,
                producer_epoch: 0,
            });
        };
        if m.state.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let mut retry = false;
        if let Some((pid, epoch)) = expected {
            let known_id =
                pid == m.producer_id || (pid == m.last_producer_id && epoch >= EPOCH_EXHAUSTED);
            if !known_id {
                return Err(TxnError::ProducerFenced);
            }
            if pid == m.producer_id && epoch == m.producer_epoch {
                // the producer's own epoch: bump it below
            } else if (pid == m.producer_id && epoch == m.last_producer_epoch)
                || pid == m.last_producer_id
            {
                retry = true; // a retry after a bump whose answer was lost (or a timeout fence)
            } else {
                return Err(TxnError::ProducerFenced);
            }
        }
        if m.state == TxnState::Ongoing {
            // Abort the open transaction first, fencing whoever opened it.
            let fenced = self.fence(m, now_ms)?;
            let abort = completion(transactional_id, &fenced);
            return Ok(InitStep::AbortFirst {
                records: vec![record(transactional_id, fenced)],
                abort,
            });
        }
        if retry {
            return Ok(InitStep::Ready {
                records: Vec::new(),
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
            });
        }
        // The old id and epoch are remembered only when the producer that had them asked for
        // the bump (KIP-360), so that its retry gets the new ones back. A new producer's bump
        // forgets them: whoever still holds them is a zombie and stays fenced.
        let own_bump = expected.is_some();
        let mut next = m.clone();
        if m.producer_epoch >= EPOCH_EXHAUSTED {
            next.last_producer_id = if own_bump { m.producer_id } else { -1 };
            next.producer_id = allocate().ok_or(TxnError::ProducerIdUnavailable)?;
            next.last_producer_epoch = -1;
            next.producer_epoch = 0;
        } else {
            next.last_producer_epoch = if own_bump { m.producer_epoch } else { -1 };
            if !own_bump {
                next.last_producer_id = -1;
            }
            next.producer_epoch = m.producer_epoch + 1;
        }
        next.timeout_ms = timeout_ms;
        next.state = TxnState::Empty;
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms;
        let (producer_id, producer_epoch) = (next.producer_id, next.producer_epoch);
        Ok(InitStep::Ready {
            records: vec![record(transactional_id, next)],
            producer_id,
            producer_epoch,
        })
    }

    /// `m`'s open transaction aborted with the epoch bumped (Kafka's
    /// `prepareFenceProducerEpoch`): markers carry the new epoch, so the old producer's writes
    /// are refused by every partition of the transaction.
    fn fence(&self, m: &TransactionMetadata, now_ms: i64) -> Result<TransactionMetadata, TxnError> {
        let mut next = prepare(m, false, now_ms);
        if m.producer_epoch == i16::MAX {
            return Err(TxnError::ProducerFenced);
        }
        next.last_producer_epoch = m.producer_epoch;
        next.producer_epoch = m.producer_epoch + 1;
        Ok(next)
    }

    /// Checks that `producer_id`/`producer_epoch` is the id's current producer.
    fn current(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<&TransactionMetadata, TxnError> {
        let m = self
            .txns
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if m.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if m.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(m)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets`
    /// partition): the partitions join the open transaction, which starts if none is open.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Vec<TxnRecord>, TxnError> {
        let m = self.current(transactional_id, producer_id, producer_epoch)?;
        if m.state.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let all_in = partitions.iter().all(|p| m.partitions.contains(p));
        if m.state == TxnState::Ongoing && all_in {
            return Ok(Vec::new());
        }
        let mut next = m.clone();
        if m.state != TxnState::Ongoing {
            next.partitions.clear();
            next.start_ms = now_ms;
            next.state = TxnState::Ongoing;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = now_ms;
        Ok(vec![record(transactional_id, next)])
    }

    /// EndTxn: decides the open transaction.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<EndStep, TxnError> {
        let m = self.current(transactional_id, producer_id, producer_epoch)?;
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {
                let next = prepare(m, commit, now_ms);
                let completion = completion(transactional_id, &next);
                Ok(EndStep::Prepare {
                    records: vec![record(transactional_id, next)],
                    completion,
                })
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(TxnError::ConcurrentTransactions)
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok(EndStep::AlreadyDone)
            }
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// The markers of `c` are written: the transaction is complete.
    pub fn complete(&self, c: &Completion, now_ms: i64) -> Vec<TxnRecord> {
        let Some(m) = self.txns.get(&c.transactional_id) else {
            return Vec::new();
        };
        let expected = if c.commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if m.state != expected
            || m.producer_id != c.producer_id
            || m.producer_epoch != c.producer_epoch
        {
            return Vec::new();
        }
        let mut next = m.clone();
        next.state = if c.commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms;
        vec![record(&c.transactional_id, next)]
    }

    /// Transactions decided but not complete (after a restart or a failover): their markers
    /// must be written (again; a marker written twice is harmless).
    pub fn preparing(&self) -> Vec<Completion> {
        self.txns
            .iter()
            .filter(|(_, m)| m.state.is_preparing())
            .map(|(id, m)| completion(id, m))
            .collect()
    }

    /// Timers due at `now_ms`: open transactions past their timeout are aborted (epoch bumped),
    /// and ids idle past `transactional.id.expiration.ms` are forgotten.
    pub fn tick(&self, now_ms: i64) -> (Vec<TxnRecord>, Vec<Completion>) {
        let mut records = Vec::new();
        let mut completions = Vec::new();
        for (id, m) in &self.txns {
            match m.state {
                TxnState::Ongoing
                    if now_ms > m.start_ms.saturating_add(i64::from(m.timeout_ms)) =>
                {
                    if let Ok(fenced) = self.fence(m, now_ms) {
                        completions.push(completion(id, &fenced));
                        records.push(record(id, fenced));
                    }
                }
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                    if now_ms
                        > m.last_update_ms
                            .saturating_add(self.config.transactional_id_expiration_ms) =>
                {
                    records.push(TxnRecord {
                        transactional_id: id.clone(),
                        metadata: None,
                    });
                }
                _ => {}
            }
        }
        (records, completions)
    }

    /// The earliest time `tick` has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.txns
            .values()
            .filter_map(|m| match m.state {
                TxnState::Ongoing => Some(m.start_ms.saturating_add(i64::from(m.timeout_ms)) + 1),
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => Some(
                    m.last_update_ms
                        .saturating_add(self.config.transactional_id_expiration_ms)
                        + 1,
                ),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
