//! The transaction coordinator's state machine with injected time.

use super::*;

const NOW: i64 = 1_000_000;

fn coordinator() -> TransactionCoordinator {
    TransactionCoordinator::new(CoordinatorConfig::default())
}

/// Runs InitProducerId to the end (aborting an open transaction first), applying its records.
fn init(c: &mut TransactionCoordinator, id: &str, pid: i64, now: i64) -> (i64, i16) {
    loop {
        match c.init_producer_id(id, 60_000, None, now, || Some(pid)) {
            Ok(InitStep::Ready {
                records,
                producer_id,
                producer_epoch,
            }) => {
                c.apply(&records);
                return (producer_id, producer_epoch);
            }
            Ok(InitStep::AbortFirst { records, abort }) => {
                c.apply(&records);
                let done = c.complete(&abort, now);
                c.apply(&done);
            }
            Err(e) => panic!("init failed: {e}"),
        }
    }
}

fn parts(names: &[(&str, i32)]) -> Vec<(String, i32)> {
    names.iter().map(|(t, p)| (t.to_string(), *p)).collect()
}

fn state(c: &TransactionCoordinator, id: &str) -> Option<TxnState> {
    c.get(id).map(|m| m.state)
}

#[test]
fn a_transaction_commits_in_two_steps_and_a_retried_end_txn_is_answered() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "tx", 42, NOW);
    assert_eq!((pid, epoch), (42, 0));
    let recs = c.add_partitions("tx", pid, epoch, &parts(&[("t", 0), ("t", 1)]), NOW);
    c.apply(&recs.unwrap_or_default());
    assert_eq!(state(&c, "tx"), Some(TxnState::Ongoing));
    // Adding a partition already in the transaction stores nothing.
    assert_eq!(
        c.add_partitions("tx", pid, epoch, &parts(&[("t", 1)]), NOW),
        Ok(vec![])
    );
    let Ok(EndStep::Prepare {
        records,
        completion,
    }) = c.end_txn("tx", pid, epoch, true, NOW)
    else {
        panic!("expected a prepare step");
    };
    c.apply(&records);
    assert_eq!(completion.partitions, parts(&[("t", 0), ("t", 1)]));
    assert!(completion.commit);
    // While markers are written, the id is busy.
    assert_eq!(
        c.end_txn("tx", pid, epoch, true, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(
        c.add_partitions("tx", pid, epoch, &parts(&[("t", 2)]), NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    c.apply(&c.complete(&completion, NOW));
    assert_eq!(state(&c, "tx"), Some(TxnState::CompleteCommit));
    assert!(c.get("tx").is_some_and(|m| m.partitions.is_empty()));
    assert_eq!(
        c.end_txn("tx", pid, epoch, true, NOW),
        Ok(EndStep::AlreadyDone)
    );
    assert_eq!(
        c.end_txn("tx", pid, epoch, false, NOW),
        Err(TxnError::InvalidTxnState)
    );
}

#[test]
fn a_new_producer_fences_the_old_one_and_aborts_its_open_transaction() {
    let mut c = coordinator();
    let (pid, e0) = init(&mut c, "tx", 7, NOW);
    c.apply(
        &c.add_partitions("tx", pid, e0, &parts(&[("t", 0)]), NOW)
            .unwrap_or_default(),
    );
    let step = c.init_producer_id("tx", 60_000, None, NOW, || Some(8));
    let Ok(InitStep::AbortFirst { records, abort }) = step else {
        panic!("expected the open transaction to be aborted first: {step:?}");
    };
    assert!(!abort.commit);
    assert_eq!(
        abort.producer_epoch,
        e0 + 1,
        "markers carry the fencing epoch"
    );
    c.apply(&records);
    c.apply(&c.complete(&abort, NOW));
    let (pid2, e2) = init(&mut c, "tx", 8, NOW);
    assert_eq!(
        (pid2, e2),
        (pid, e0 + 2),
        "same producer id, epoch bumped again"
    );
    for result in [
        c.add_partitions("tx", pid, e0, &parts(&[("t", 0)]), NOW)
            .map(|_| ()),
        c.end_txn("tx", pid, e0, true, NOW).map(|_| ()),
    ] {
        assert_eq!(result, Err(TxnError::ProducerFenced));
    }
    assert_eq!(
        c.end_txn("tx", pid + 1, e2, true, NOW).map(|_| ()),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn a_timed_out_transaction_is_aborted_with_the_epoch_bumped() {
    let mut c = coordinator();
    let (pid, epoch) = init(&mut c, "tx", 3, NOW);
    c.apply(
        &c.add_partitions("tx", pid, epoch, &parts(&[("t", 0)]), NOW)
            .unwrap_or_default(),
    );
    assert_eq!(c.next_deadline(), Some(NOW + 60_001));
    assert_eq!(c.tick(NOW + 60_000), (vec![], vec![]), "not yet");
    let (records, completions) = c.tick(NOW + 60_001);
    c.apply(&records);
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0].producer_epoch, epoch + 1);
    assert_eq!(state(&c, "tx"), Some(TxnState::PrepareAbort));
    assert_eq!(
        c.preparing(),
        completions,
        "still to complete after a restart"
    );
    c.apply(&c.complete(&completions[0], NOW + 60_002));
    assert_eq!(
        c.end_txn("tx", pid, epoch, false, NOW + 60_003),
        Err(TxnError::ProducerFenced)
    );
    // The fenced producer re-initialises with its old epoch (KIP-360): it gets the current
    // epoch back, not a fencing error.
    let step = c.init_producer_id("tx", 60_000, Some((pid, epoch)), NOW, || None);
    assert!(
        matches!(step, Ok(InitStep::Ready { producer_epoch, .. }) if producer_epoch == epoch + 1),
        "{step:?}"
    );
    let stale = c.init_producer_id("tx", 60_000, Some((pid, epoch - 1)), NOW, || None);
    assert_eq!(stale.map(|_| ()), Err(TxnError::ProducerFenced));
}

#[test]
fn an_exhausted_epoch_moves_to_a_new_producer_id() {
    let mut c = coordinator();
    init(&mut c, "tx", 1, NOW);
    let mut m = c.get("tx").cloned().unwrap_or_else(|| panic!("no state"));
    m.producer_epoch = i16::MAX - 1;
    c.replay(&TxnRecord {
        transactional_id: "tx".into(),
        metadata: Some(m),
    });
    // The producer itself asks (KIP-360): the old id is remembered for its retry.
    let step = c.init_producer_id("tx", 60_000, Some((1, i16::MAX - 1)), NOW, || Some(2));
    let Ok(InitStep::Ready {
        records,
        producer_id,
        producer_epoch,
    }) = step
    else {
        panic!("{step:?}");
    };
    assert_eq!((producer_id, producer_epoch), (2, 0));
    c.apply(&records);
    assert_eq!(c.get("tx").map(|m| m.last_producer_id), Some(1));
    let retry = c.init_producer_id("tx", 60_000, Some((1, i16::MAX - 1)), NOW, || None);
    assert!(
        matches!(
            retry,
            Ok(InitStep::Ready {
                producer_id: 2,
                producer_epoch: 0,
                ..
            })
        ),
        "{retry:?}"
    );
    // A new producer's bump forgets it: the old id is fenced from then on.
    assert_eq!(init(&mut c, "tx", 3, NOW), (2, 1));
    let zombie = c.init_producer_id("tx", 60_000, Some((1, i16::MAX - 1)), NOW, || None);
    assert_eq!(zombie.map(|_| ()), Err(TxnError::ProducerFenced));
}

#[test]
fn bad_timeouts_are_refused_and_idle_ids_expire() {
    let mut c = coordinator();
    for bad in [0, -1, TRANSACTION_MAX_TIMEOUT_MS + 1] {
        assert_eq!(
            c.init_producer_id("tx", bad, None, NOW, || Some(1))
                .map(|_| ()),
            Err(TxnError::InvalidTransactionTimeout)
        );
    }
    init(&mut c, "tx", 1, NOW);
    let expiry = NOW + TRANSACTIONAL_ID_EXPIRATION_MS;
    assert_eq!(c.tick(expiry).0, vec![]);
    let (records, _) = c.tick(expiry + 1);
    assert_eq!(records.len(), 1);
    c.apply(&records);
    assert!(c.get("tx").is_none());
}

#[test]
fn a_zombie_cannot_reclaim_the_epoch_a_new_producer_bumped() {
    let mut c = coordinator();
    let (pid, e0) = init(&mut c, "tx", 5, NOW);
    // Producer B takes over (no expected id/epoch): epoch e0 + 1.
    let (_, e1) = init(&mut c, "tx", 6, NOW);
    assert_eq!(e1, e0 + 1);
    // Zombie A re-initialises with its old epoch: fenced, not handed B's epoch.
    let zombie = c.init_producer_id("tx", 60_000, Some((pid, e0)), NOW, || None);
    assert_eq!(zombie.map(|_| ()), Err(TxnError::ProducerFenced));
    // B itself bumping its own epoch (KIP-360) and retrying gets the same answer twice.
    let Ok(InitStep::Ready {
        records,
        producer_epoch: e2,
        ..
    }) = c.init_producer_id("tx", 60_000, Some((pid, e1)), NOW, || None)
    else {
        panic!("B's own bump failed");
    };
    c.apply(&records);
    let retry = c.init_producer_id("tx", 60_000, Some((pid, e1)), NOW, || None);
    assert!(
        matches!(retry, Ok(InitStep::Ready { producer_epoch, ref records, .. }) if producer_epoch == e2 && records.is_empty()),
        "{retry:?}"
    );
}
