//! Transactions in a partition log: transactional batches hold the last stable offset back
//! until their marker, aborted transactions are listed for `read_committed` fetches, and both
//! survive a reopen (rebuilt from the segments) and a replica's truncation.

use super::*;
use crate::batch_builder::{build, Producer};
use crate::control::{marker_batch, ControlType, TxnMarker};
use crate::txn_state::AbortedTxn;

const NOW: i64 = 1_700_000_000_000;
const TXN: i16 = 1 << 4;

fn txn_batch(pid: i64, seq: i32, records: usize) -> Vec<u8> {
    let producer = Producer {
        id: pid,
        epoch: 0,
        base_sequence: seq,
    };
    let recs: Vec<crate::batch_builder::KeyValue> =
        (0..records).map(|_| (None, Some(&b"v"[..]))).collect();
    build(TXN, producer, &recs, NOW)
}

fn marker(pid: i64, control: ControlType) -> Vec<u8> {
    marker_batch(
        &TxnMarker {
            producer_id: pid,
            producer_epoch: 0,
            control,
            coordinator_epoch: 0,
        },
        NOW,
    )
}

fn append(log: &mut PartitionLog, mut b: Vec<u8>) -> AppendInfo {
    let info = log.append(&mut b, NOW).unwrap();
    log.mark_flushed(log.log_end_offset());
    info
}

#[test]
fn the_last_stable_offset_waits_for_markers_and_aborts_are_listed_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), 0, 0, NOW).unwrap();
    append(
        &mut log,
        crate::batch_builder::uncompressed_batch(2, NOW, b"plain"),
    ); // 0-1
    append(&mut log, txn_batch(7, 0, 3)); // 2-4, producer 7
    append(&mut log, txn_batch(8, 0, 2)); // 5-6, producer 8
    assert_eq!(log.high_watermark(), 7);
    assert_eq!(log.last_stable_offset(), 2);
    append(&mut log, marker(7, ControlType::Commit)); // 7
    assert_eq!(log.last_stable_offset(), 5);
    append(&mut log, marker(8, ControlType::Abort)); // 8
    assert_eq!(log.last_stable_offset(), 9);
    let aborted = vec![AbortedTxn {
        producer_id: 8,
        first_offset: 5,
        last_offset: 8,
    }];
    assert_eq!(log.aborted_transactions(0, 9), aborted);
    append(&mut log, txn_batch(7, 3, 1)); // 9: producer 7's next transaction, still open
    assert_eq!(log.last_stable_offset(), 9);
    log.flush_all().unwrap();
    drop(log);

    let (log, _) = PartitionLog::open(dir.path(), LogConfig::default(), 10, 0, NOW).unwrap();
    assert_eq!(log.aborted_transactions(0, 10), aborted);
    assert_eq!(
        log.last_stable_offset(),
        9,
        "the open transaction is found again"
    );
    assert!(log.transactions().is_ongoing(7));
}

#[test]
fn truncating_a_replica_forgets_markers_above_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), 0, 0, NOW).unwrap();
    log.set_replicated(0);
    let mut b = txn_batch(3, 0, 2);
    log.append_entry(&mut b, 1, NOW).unwrap(); // 0-1
    log.advance_high_watermark(2);
    let mut m = marker(3, ControlType::Abort);
    log.append_entry(&mut m, 1, NOW).unwrap(); // 2, not committed
    assert_eq!(log.aborted_transactions(0, 3).len(), 1);
    log.truncate_to(2, NOW).unwrap();
    assert!(log.aborted_transactions(0, 3).is_empty());
    assert!(log.transactions().is_ongoing(3));
    assert_eq!(log.last_stable_offset(), 0);
}

#[test]
fn a_marker_with_a_newer_epoch_fences_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), 0, 0, NOW).unwrap();
    append(&mut log, txn_batch(5, 0, 1));
    let mut bumped = marker_batch(
        &TxnMarker {
            producer_id: 5,
            producer_epoch: 1,
            control: ControlType::Abort,
            coordinator_epoch: 0,
        },
        NOW,
    );
    log.append(&mut bumped, NOW).unwrap();
    let mut zombie = txn_batch(5, 1, 1); // epoch 0, after the fence
    let err = log.append(&mut zombie, NOW).map(|_| ());
    assert!(
        matches!(
            err,
            Err(StorageError::Producer(
                crate::producer_state::ProducerError::InvalidProducerEpoch { .. }
            ))
        ),
        "{err:?}"
    );
}

#[test]
fn a_marker_from_a_deposed_coordinator_is_refused_also_after_reopen() {
    let from = |coordinator_epoch: i32, control| {
        marker_batch(
            &TxnMarker {
                producer_id: 5,
                producer_epoch: 0,
                control,
                coordinator_epoch,
            },
            NOW,
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), 0, 0, NOW).unwrap();
    append(&mut log, txn_batch(5, 0, 1));
    append(&mut log, from(3, ControlType::Commit));
    append(&mut log, txn_batch(5, 1, 1));
    let fenced = |log: &mut PartitionLog| {
        let mut late = from(2, ControlType::Abort);
        let err = log.append(&mut late, NOW).map(|_| ());
        matches!(
            err,
            Err(StorageError::Producer(
                crate::producer_state::ProducerError::CoordinatorFenced {
                    current: 3,
                    got: 2,
                    ..
                }
            ))
        )
    };
    assert!(fenced(&mut log));
    drop(log);
    let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), 3, 0, NOW).unwrap();
    assert!(
        fenced(&mut log),
        "the coordinator epoch is rebuilt from the log"
    );
    // The current coordinator (or a newer one) still ends the transaction.
    append(&mut log, from(3, ControlType::Commit));
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
}
