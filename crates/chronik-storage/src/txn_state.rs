//! Transactions of one partition (Kafka's ongoing-transaction tracking in its
//! `ProducerStateManager`, and its aborted-transaction index): which producers have a
//! transaction open here and from which offset, hence the first unstable offset that bounds
//! the last stable offset, and the aborted transactions a `read_committed` fetch is told
//! about. Rebuilt with the producer state when the log is opened or truncated. Pure: no I/O.

use crate::batch::BatchHeader;
use crate::control::ControlType;
use chronik_types::Offset;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A transaction that ended with an ABORT marker: its records, from `first_offset` to the
/// marker at `last_offset`, are skipped by `read_committed` consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: Offset,
    pub last_offset: Offset,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionState {
    /// Producer id → offset of its open transaction's first batch in this partition.
    #[serde(serialize_with = "crate::producer_state::sorted")]
    ongoing: HashMap<i64, Offset>,
    /// In marker order, which is `last_offset` order.
    aborted: Vec<AbortedTxn>,
}

impl TransactionState {
    /// Records an appended batch; `control` is the marker type of a control batch.
    pub fn record(&mut self, h: &BatchHeader, control: Option<ControlType>) {
        if h.producer_id < 0 {
            return;
        }
        if h.is_control() {
            let first = self.ongoing.remove(&h.producer_id);
            if let (Some(first_offset), Some(ControlType::Abort)) = (first, control) {
                self.aborted.push(AbortedTxn {
                    producer_id: h.producer_id,
                    first_offset,
                    last_offset: h.base_offset,
                });
            }
            return;
        }
        if h.is_transactional() {
            self.ongoing.entry(h.producer_id).or_insert(h.base_offset);
        }
    }

    /// The first offset of the oldest open transaction (everything from there on is unstable).
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        self.ongoing.values().min().copied()
    }

    /// Whether `producer_id` has a transaction open in this partition.
    pub fn is_ongoing(&self, producer_id: i64) -> bool {
        self.ongoing.contains_key(&producer_id)
    }

    /// Aborted transactions with records in `[from, upto)`: those whose marker is at or after
    /// `from` and whose first record is before `upto`.
    pub fn aborted_between(&self, from: Offset, upto: Offset) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted
            .get(start..)
            .unwrap_or_default()
            .iter()
            .filter(|a| a.first_offset < upto)
            .copied()
            .collect()
    }

    /// Forgets aborted transactions wholly below the log start (deleted by retention).
    pub fn remove_before(&mut self, log_start_offset: Offset) {
        self.aborted.retain(|a| a.last_offset >= log_start_offset);
    }

    pub fn ongoing_count(&self) -> usize {
        self.ongoing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, base: Offset, count: i32, attributes: i16) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            records_count: count,
        }
    }
    const TXN: i16 = 1 << 4;
    const MARKER: i16 = (1 << 4) | (1 << 5);

    #[test]
    fn open_transactions_bound_the_stable_offset_until_their_marker() {
        let mut s = TransactionState::default();
        s.record(&header(-1, 0, 5, 0), None);
        assert_eq!(s.first_unstable_offset(), None);
        s.record(&header(7, 5, 3, TXN), None);
        s.record(&header(8, 8, 2, TXN), None);
        s.record(&header(7, 10, 2, TXN), None);
        assert_eq!(s.first_unstable_offset(), Some(5));
        s.record(&header(7, 12, 1, MARKER), Some(ControlType::Commit));
        assert_eq!(s.first_unstable_offset(), Some(8));
        assert!(!s.is_ongoing(7) && s.is_ongoing(8));
        s.record(&header(8, 13, 1, MARKER), Some(ControlType::Abort));
        assert_eq!(s.first_unstable_offset(), None);
        assert_eq!(
            s.aborted_between(0, 100),
            vec![AbortedTxn {
                producer_id: 8,
                first_offset: 8,
                last_offset: 13
            }]
        );
    }

    #[test]
    fn aborted_transactions_are_reported_only_where_they_overlap_the_fetch() {
        let mut s = TransactionState::default();
        for (i, pid) in [1i64, 2, 3].iter().enumerate() {
            let base = i64::try_from(i).unwrap_or(0) * 10;
            s.record(&header(*pid, base, 5, TXN), None);
            s.record(&header(*pid, base + 5, 1, MARKER), Some(ControlType::Abort));
        }
        let pids = |v: Vec<AbortedTxn>| v.iter().map(|a| a.producer_id).collect::<Vec<_>>();
        assert_eq!(pids(s.aborted_between(0, 30)), vec![1, 2, 3]);
        assert_eq!(pids(s.aborted_between(6, 30)), vec![2, 3]);
        assert_eq!(pids(s.aborted_between(5, 10)), vec![1]);
        assert_eq!(pids(s.aborted_between(12, 21)), vec![2, 3]);
        s.remove_before(16);
        assert_eq!(pids(s.aborted_between(0, 30)), vec![3]);
    }

    #[test]
    fn a_marker_without_records_here_aborts_nothing() {
        let mut s = TransactionState::default();
        s.record(&header(4, 0, 1, MARKER), Some(ControlType::Abort));
        assert!(s.aborted_between(0, 10).is_empty());
        assert_eq!(s.first_unstable_offset(), None);
    }
}
