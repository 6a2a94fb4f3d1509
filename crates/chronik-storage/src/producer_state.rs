//! Idempotent producer state of one partition (Kafka's `ProducerStateManager`): for every
//! producer id, its epoch and its last `PRODUCER_BATCHES_RETAINED` batches' sequence ranges
//! and offsets. A retried batch is recognised and answered with its original offsets; a gap in
//! sequence numbers is refused. Rebuilt from batch headers when the log is opened, so it
//! survives restarts. Pure: no I/O.

use crate::batch::BatchHeader;
use chronik_types::Offset;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Serializes a map in key order (stable bytes for the `producer-state` file).
pub(crate) fn sorted<K: Ord + Serialize, V: Serialize, S: Serializer>(
    map: &HashMap<K, V>,
    s: S,
) -> Result<S::Ok, S::Error> {
    map.iter().collect::<BTreeMap<_, _>>().serialize(s)
}

/// Batches remembered per producer (Kafka's `NUM_BATCHES_TO_RETAIN`, what
/// `max.in.flight.requests.per.connection` ≤ 5 relies on).
pub const PRODUCER_BATCHES_RETAINED: usize = 5;
/// `producer_id` of batches from non-idempotent producers.
pub const NO_PRODUCER_ID: i64 = -1;
/// `base_sequence` of batches without sequence numbers (markers, coordinator writes).
pub const NO_SEQUENCE: i32 = -1;

/// One remembered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<ProducerBatch>,
    /// The coordinator epoch of the producer's last transaction marker here.
    coordinator_epoch: Option<i32>,
}

/// Why an idempotent batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        current: i16,
        got: i16,
    },
    #[error("a request mixes a retried batch of producer {0} with new ones")]
    DuplicateSequence(i64),
    #[error(
        "a marker of producer {producer_id} from coordinator epoch {got}, older than {current}"
    )]
    CoordinatorFenced {
        producer_id: i64,
        current: i32,
        got: i32,
    },
}

/// The outcome of checking a batch's sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or next in sequence: append it.
    Append,
    /// Already in the log: answer with the original batch.
    Duplicate(ProducerBatch),
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// Last sequence of a batch starting at `first` with `count` records (sequences wrap at i32::MAX).
pub fn last_seq(first: i32, last_offset_delta: i32) -> i32 {
    let last = i64::from(first) + i64::from(last_offset_delta);
    i32::try_from(last % (i64::from(i32::MAX) + 1)).unwrap_or(0)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStateManager {
    #[serde(serialize_with = "sorted")]
    producers: HashMap<i64, ProducerEntry>,
    /// Base offset of the first batch with a producer id recorded (batches are recorded in
    /// offset order): the state comes from batches at or after it.
    first_offset: Option<Offset>,
}

impl ProducerStateManager {
    /// Checks a batch against the producer's state (Kafka's `ProducerAppendInfo.checkSequence`).
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, ProducerError> {
        if h.producer_id == NO_PRODUCER_ID || h.is_control() {
            return Ok(SequenceCheck::Append);
        }
        let first = h.base_sequence;
        let last = last_seq(first, h.last_offset_delta);
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown producer (new, or its batches were all removed): any sequence is accepted.
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                current: entry.epoch,
                got: h.producer_epoch,
            });
        }
        if h.base_sequence == NO_SEQUENCE {
            // Written by a coordinator (transactional offset commits): no sequence to check.
            return Ok(SequenceCheck::Append);
        }
        if h.producer_epoch > entry.epoch {
            if first != 0 {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: 0,
                    got: first,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        let expected = entry.batches.back().map_or(first, |b| next_seq(b.last_seq));
        if first != expected {
            return Err(ProducerError::OutOfOrderSequence {
                producer_id: h.producer_id,
                expected,
                got: first,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Checks a transaction marker: one from a coordinator older than the one that wrote the
    /// producer's last marker here (a deposed coordinator) is refused (Kafka's
    /// TRANSACTION_COORDINATOR_FENCED).
    pub fn check_marker(
        &self,
        producer_id: i64,
        coordinator_epoch: i32,
    ) -> Result<(), ProducerError> {
        match self
            .producers
            .get(&producer_id)
            .and_then(|e| e.coordinator_epoch)
        {
            Some(current) if current > coordinator_epoch => Err(ProducerError::CoordinatorFenced {
                producer_id,
                current,
                got: coordinator_epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Records the coordinator epoch of an appended marker (with `record` of its header).
    pub fn record_marker(&mut self, producer_id: i64, coordinator_epoch: i32) {
        let entry = self.producers.entry(producer_id).or_default();
        entry.coordinator_epoch = Some(
            entry
                .coordinator_epoch
                .map_or(coordinator_epoch, |c| c.max(coordinator_epoch)),
        );
    }

    /// Records an appended batch (with its assigned offsets), at append time and at rebuild.
    pub fn record(&mut self, h: &BatchHeader) {
        if h.producer_id == NO_PRODUCER_ID {
            return;
        }
        self.first_offset.get_or_insert(h.base_offset);
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.is_control() || h.base_sequence == NO_SEQUENCE {
            // A transaction marker carries the producer's current epoch: a coordinator that
            // bumped it (fencing a zombie) makes older epochs invalid here too.
            if h.producer_epoch > entry.epoch {
                entry.epoch = h.producer_epoch;
                entry.batches.clear();
            }
            return;
        }
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(ProducerBatch {
            first_seq: h.base_sequence,
            last_seq: last_seq(h.base_sequence, h.last_offset_delta),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
        });
        while entry.batches.len() > PRODUCER_BATCHES_RETAINED {
            entry.batches.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Base offset of the first batch carrying a producer id (idempotent, transactional or a
    /// marker) that this state was built from; None when there is none.
    pub fn first_offset(&self) -> Option<Offset> {
        self.first_offset
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base: Offset) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn a_marker_from_an_older_coordinator_is_fenced() {
        let mut s = ProducerStateManager::default();
        assert_eq!(s.check_marker(7, 3), Ok(()));
        s.record_marker(7, 3);
        assert_eq!(s.check_marker(7, 3), Ok(()));
        assert_eq!(s.check_marker(7, 4), Ok(()));
        assert_eq!(
            s.check_marker(7, 2),
            Err(ProducerError::CoordinatorFenced {
                producer_id: 7,
                current: 3,
                got: 2
            })
        );
        // Other producers are not affected, and a new epoch's batches keep the coordinator's.
        assert_eq!(s.check_marker(8, 0), Ok(()));
        let b = header(7, 1, 0, 1, 10);
        s.record(&b);
        assert!(s.check_marker(7, 2).is_err());
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut s = ProducerStateManager::default();
        let b0 = header(7, 0, 0, 3, 10);
        assert_eq!(s.check(&b0), Ok(SequenceCheck::Append));
        s.record(&b0);
        let b1 = header(7, 0, 3, 2, 13);
        assert_eq!(s.check(&b1), Ok(SequenceCheck::Append));
        s.record(&b1);
        match s.check(&header(7, 0, 0, 3, -1)) {
            Ok(SequenceCheck::Duplicate(b)) => assert_eq!((b.base_offset, b.last_offset), (10, 12)),
            other => panic!("expected duplicate, got {other:?}"),
        }
    }

    #[test]
    fn gaps_and_old_epochs_are_refused() {
        let mut s = ProducerStateManager::default();
        s.record(&header(7, 1, 0, 3, 0));
        assert!(matches!(
            s.check(&header(7, 1, 5, 1, 0)),
            Err(ProducerError::OutOfOrderSequence {
                expected: 3,
                got: 5,
                ..
            })
        ));
        assert!(matches!(
            s.check(&header(7, 0, 3, 1, 0)),
            Err(ProducerError::InvalidProducerEpoch { .. })
        ));
        assert!(matches!(
            s.check(&header(7, 2, 4, 1, 0)),
            Err(ProducerError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(s.check(&header(7, 2, 0, 1, 0)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStateManager::default();
        for i in 0..6 {
            s.record(&header(1, 0, i, 1, i64::from(i)));
        }
        assert!(matches!(
            s.check(&header(1, 0, 0, 1, 0)),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            s.check(&header(1, 0, 1, 1, 0)),
            Ok(SequenceCheck::Duplicate(_))
        ));
    }

    #[test]
    fn sequences_wrap() {
        assert_eq!(last_seq(i32::MAX, 0), i32::MAX);
        assert_eq!(last_seq(i32::MAX, 1), 0);
        let mut s = ProducerStateManager::default();
        s.record(&header(1, 0, i32::MAX - 1, 2, 0));
        assert_eq!(s.check(&header(1, 0, 0, 1, 2)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn non_idempotent_batches_are_not_tracked() {
        let mut s = ProducerStateManager::default();
        let h = header(NO_PRODUCER_ID, -1, -1, 1, 0);
        assert_eq!(s.check(&h), Ok(SequenceCheck::Append));
        s.record(&h);
        assert!(s.is_empty());
    }
}
