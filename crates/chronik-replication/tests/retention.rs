//! Retention of a replicated log at the replica level: `plan_retention` picks the last applied
//! entry below where retention wants the log to start; the purge forgets the entries, then
//! deletes the segments below (never data of a kept entry); a restart rebuilds the same log and
//! the state machine offers the purge point as its snapshot.

use chronik_replication::log_store::lock;
use chronik_replication::replica_log::{lock_log, log_id};
use chronik_replication::types::Entry;
use chronik_replication::{PartitionStateMachine, RecordBatch, ReplicaLog, SharedReplica};
use chronik_storage::batch::BatchHeader;
use chronik_storage::batch_builder::{self, uncompressed_batch};
use chronik_storage::config::LogConfig;
use chronik_storage::producer_state::SequenceCheck;
use chronik_storage::state_snapshot::StateSnapshot;
use chronik_storage::PartitionLog;
use openraft::storage::RaftStateMachine;
use openraft::EntryPayload;
use openraft::RaftSnapshotBuilder;
use std::path::Path;
use std::sync::{Arc, Mutex};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TERM: u64 = 3;
const ENTRIES: u64 = 60;
const NOW_MS: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        retention_bytes: 3 * 1024,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> Result<SharedReplica, Box<dyn std::error::Error>> {
    let (log, _) = PartitionLog::open(dir, config(), 0, 0, NOW_MS)?;
    Ok(Arc::new(Mutex::new(ReplicaLog::open(
        chronik_storage::fs::real(),
        dir,
        Arc::new(Mutex::new(log)),
        NOW_MS,
    )?)))
}

fn value(i: u64) -> Vec<u8> {
    format!("value-{i:04}-{}", "x".repeat(20)).into_bytes()
}

/// ENTRIES one-record batches (about 100 bytes each, so about ten per segment), all applied;
/// entry `idempotent_at`, if any, from an idempotent producer.
fn write_with(r: &SharedReplica, idempotent_at: Option<u64>) -> TestResult {
    let mut r = lock(r);
    let entries = (1..=ENTRIES).map(|i| {
        let batch = if Some(i) == idempotent_at {
            let producer = batch_builder::Producer {
                id: 42,
                epoch: 0,
                base_sequence: 0,
            };
            batch_builder::producer_batch(producer, 1, NOW_MS, &value(i))
        } else {
            uncompressed_batch(1, NOW_MS, &value(i))
        };
        Entry {
            log_id: log_id(TERM, i),
            payload: EntryPayload::Normal(RecordBatch(batch.into())),
        }
    });
    r.append(entries, NOW_MS)?;
    r.sync()?;
    for i in 1..=ENTRIES {
        r.apply(log_id(TERM, i))?;
    }
    r.save_committed(Some(log_id(TERM, ENTRIES)));
    Ok(())
}

fn write(r: &SharedReplica) -> TestResult {
    write_with(r, None)
}

fn segments(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    Ok(names)
}

#[test]
fn a_purge_deletes_the_segments_retention_wants_gone_and_nothing_a_kept_entry_needs() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let r = open(dir.path())?;
    write(&r)?;
    let before = segments(dir.path())?;
    assert!(before.len() > 4, "{before:?}");

    let point = lock(&r)
        .plan_retention(NOW_MS, Some(log_id(TERM, ENTRIES)))
        .ok_or("retention.bytes is exceeded: something to purge")?;
    let (start, size) = {
        let g = lock(&r);
        let log = lock_log(g.log());
        (log.retention_start(NOW_MS), log.size_bytes())
    };
    assert!(start > 0 && size > 3 * 1024);
    // The entry ends exactly where retention wants the log to start (a segment boundary).
    assert_eq!(lock(&r).offset_after(point.index), start);
    assert_eq!(lock(&r).snapshot_point(), Some(point));
    // Planning deletes nothing: the segments go with the purge.
    assert_eq!(segments(dir.path())?, before);

    lock(&r).purge(point)?;
    let after = segments(dir.path())?;
    assert!(after.len() < before.len(), "{after:?}");
    {
        let g = lock(&r);
        let log = lock_log(g.log());
        assert_eq!(log.log_start_offset(), start);
        assert!(log.size_bytes() <= 3 * 1024);
    }
    // Every kept entry still reads back.
    let kept = lock(&r).read(point.index + 1, ENTRIES + 1)?;
    assert_eq!(kept.len() as u64, ENTRIES - point.index);

    // Nothing more to do until more data arrives.
    assert_eq!(
        lock(&r).plan_retention(NOW_MS, Some(log_id(TERM, ENTRIES))),
        None
    );
    Ok(())
}

#[test]
fn only_applied_entries_are_purged() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r = open(dir.path())?;
    write(&r)?;
    let point = lock(&r)
        .plan_retention(NOW_MS, Some(log_id(TERM, 4)))
        .ok_or("something to purge")?;
    assert_eq!(point, log_id(TERM, 4));
    assert_eq!(lock(&r).plan_retention(NOW_MS, None), None);
    Ok(())
}

#[tokio::test]
async fn after_a_restart_the_log_is_the_same_and_its_snapshot_is_the_purge_point() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r = open(dir.path())?;
    write(&r)?;
    let point = lock(&r)
        .plan_retention(NOW_MS, Some(log_id(TERM, ENTRIES)))
        .ok_or("something to purge")?;
    lock(&r).purge(point)?;
    let kept = lock(&r).read(0, ENTRIES + 1)?;
    let start = lock_log(lock(&r).log()).log_start_offset();
    lock(&r).checkpoint()?;
    drop(r);

    let r = open(dir.path())?;
    assert_eq!(lock(&r).state().purged, Some(point));
    assert_eq!(lock(&r).read(0, ENTRIES + 1)?, kept);
    assert_eq!(lock(&r).offset_after(point.index), start);
    let mut sm = PartitionStateMachine::new(Arc::clone(&r), Arc::new(tokio::sync::Notify::new()));
    let snapshot = sm
        .get_current_snapshot()
        .await?
        .ok_or("a purged log has a snapshot")?;
    assert_eq!(snapshot.meta.last_log_id, Some(point));
    let data = snapshot.snapshot.into_inner();
    assert_eq!(
        data.get(..8),
        Some(&start.to_be_bytes()[..]),
        "the snapshot ends where the log now starts"
    );
    let state = StateSnapshot::decode(data.get(8..).unwrap_or_default(), dir.path())?;
    assert_eq!(
        state,
        lock(&r).state_at(start)?,
        "with the producer state there"
    );
    Ok(())
}

/// Whether a retry of producer 42's batch (entry 20, offset 19) is recognised as a duplicate
/// of the batch at offset 19 (None: the producer is unknown or the batch is not a retry).
fn retry_is_duplicate(r: &SharedReplica) -> Result<bool, Box<dyn std::error::Error>> {
    let producer = batch_builder::Producer {
        id: 42,
        epoch: 0,
        base_sequence: 0,
    };
    let retry = batch_builder::producer_batch(producer, 1, NOW_MS, &value(20));
    let h = BatchHeader::parse(&retry).ok_or("a batch header")?;
    let g = lock(r);
    let log = lock_log(g.log());
    Ok(matches!(
        log.check_producer(&h, &retry),
        Ok(SequenceCheck::Duplicate(b)) if b.base_offset == 19
    ))
}

#[test]
fn retention_deletes_an_idempotent_producers_batches_and_keeps_its_state() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r = open(dir.path())?;
    write_with(&r, Some(20))?;
    assert!(retry_is_duplicate(&r)?);
    let end = lock(&r).offset_after(ENTRIES);
    let state_before = lock(&r).state_at(end)?;
    let point = lock(&r)
        .plan_retention(NOW_MS, Some(log_id(TERM, ENTRIES)))
        .ok_or("something to purge")?;
    lock(&r).purge(point)?;
    let start = lock_log(lock(&r).log()).first_segment_base();
    assert!(
        start > 19,
        "the producer's batch (offset 19) is deleted: log from {start}"
    );
    // Its state is not: a retry is still a duplicate, here and after a restart, where the
    // state comes from the producer-state file written before the segments went.
    assert!(retry_is_duplicate(&r)?);
    lock(&r).checkpoint()?;
    drop(r);
    let files = chronik_storage::state_snapshot::StateSnapshot::list(dir.path())?;
    let r = open(dir.path())?;
    let first_offset = lock(&r).state().first_offset;
    assert_eq!(files, vec![first_offset]);
    assert!(retry_is_duplicate(&r)?);
    let state_after = lock(&r).state_at(end)?;
    assert_eq!(state_after.producers, state_before.producers);
    Ok(())
}

#[test]
fn a_purge_behind_a_delete_records_offset_keeps_the_segments_above_the_purge() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r = open(dir.path())?;
    write_with(&r, Some(20))?;
    // DeleteRecords moves the log start to 35 (segments kept); only entries up to 10 are
    // applied when retention plans, so the purge (and the producer-state file) stop at 10.
    lock_log(lock(&r).log()).delete_records_before(35)?;
    let point = lock(&r)
        .plan_retention(NOW_MS, Some(log_id(TERM, 10)))
        .ok_or("something to purge")?;
    assert_eq!(point, log_id(TERM, 10));
    lock(&r).purge(point)?;
    // The segments above the purge point stay (their producer state is in no file yet): the
    // producer's batch at offset 19 too, here and after a restart.
    assert!(lock_log(lock(&r).log()).first_segment_base() <= 10);
    assert!(retry_is_duplicate(&r)?);
    lock(&r).checkpoint()?;
    drop(r);
    let r = open(dir.path())?;
    assert!(retry_is_duplicate(&r)?);
    Ok(())
}

#[tokio::test]
async fn a_replica_that_installs_the_snapshot_gets_the_producer_state_of_the_deleted_batches(
) -> TestResult {
    let leader_dir = tempfile::tempdir()?;
    let leader = open(leader_dir.path())?;
    write_with(&leader, Some(20))?;
    let point = lock(&leader)
        .plan_retention(NOW_MS, Some(log_id(TERM, ENTRIES)))
        .ok_or("something to purge")?;
    let mut sm =
        PartitionStateMachine::new(Arc::clone(&leader), Arc::new(tokio::sync::Notify::new()));
    let snapshot = sm.get_snapshot_builder().await.build_snapshot().await?;
    assert_eq!(snapshot.meta.last_log_id, Some(point));
    lock(&leader).purge(point)?;

    // A new replica, with nothing, installs it and starts its log over at its end.
    let follower_dir = tempfile::tempdir()?;
    let follower = open(follower_dir.path())?;
    let mut fsm =
        PartitionStateMachine::new(Arc::clone(&follower), Arc::new(tokio::sync::Notify::new()));
    fsm.install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await?;
    let end = lock(&leader).offset_after(point.index);
    assert_eq!(lock_log(lock(&follower).log()).log_end_offset(), end);
    assert!(
        retry_is_duplicate(&follower)?,
        "the follower knows producer 42's batch"
    );
    assert_eq!(
        lock(&follower).state_at(end)?,
        lock(&leader).state_at(end)?,
        "the same producer state on both replicas"
    );
    // And after a restart of the follower.
    lock(&follower).checkpoint()?;
    drop((fsm, follower));
    let follower = open(follower_dir.path())?;
    assert!(retry_is_duplicate(&follower)?);
    Ok(())
}

#[test]
fn a_snapshot_install_cut_short_by_a_crash_is_finished_at_the_next_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r = open(dir.path())?;
    write(&r)?;
    lock(&r).checkpoint()?;
    drop(r);
    // What `install_snapshot` records before it replaces the log: a snapshot of entries this
    // replica does not have, ending past its log.
    let snapshot = log_id(TERM + 1, 200);
    let mut state = chronik_replication::raft_state::RaftState::load(dir.path())?;
    state.purged = Some(snapshot);
    state.first_index = 201;
    state.first_offset = 500;
    state.committed = Some(snapshot);
    state.store(dir.path())?;

    // Stored before that: the snapshot's producer state (producer 42's batch at offset 19).
    let producers = producer_state_with_batch_at_19(500)?;
    producers.store(dir.path())?;

    let r = open(dir.path())?;
    {
        let g = lock(&r);
        assert_eq!(g.last_log_id(), Some(snapshot));
        assert_eq!(g.index().first_index(), 201);
        let log = lock_log(g.log());
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
    }
    assert!(
        retry_is_duplicate(&r)?,
        "the producer state is the snapshot's"
    );
    assert_eq!(lock(&r).state_at(500)?, producers);
    Ok(())
}

/// The producer state at `offset` of a log whose only producer batch is producer 42's at 19.
fn producer_state_with_batch_at_19(
    offset: i64,
) -> Result<StateSnapshot, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let r = open(dir.path())?;
    write_with(&r, Some(20))?;
    let end = lock_log(lock(&r).log()).log_end_offset();
    let mut state = lock(&r).state_at(end)?;
    state.offset = offset;
    Ok(state)
}

#[test]
fn a_producer_state_file_of_an_install_never_recorded_is_removed_at_the_next_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r = open(dir.path())?;
    write(&r)?;
    lock(&r).checkpoint()?;
    drop(r);
    // `install_snapshot` stored the snapshot's producer state, then the crash came before it
    // recorded the snapshot: the log and the Raft state are as they were.
    producer_state_with_batch_at_19(500)?.store(dir.path())?;
    let r = open(dir.path())?;
    assert_eq!(StateSnapshot::list(dir.path())?, Vec::<i64>::new());
    assert!(
        !retry_is_duplicate(&r)?,
        "the producer state is this log's own"
    );
    Ok(())
}

#[test]
fn segments_below_a_delete_records_offset_go_with_the_next_purge() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (log, _) = PartitionLog::open(
        dir.path(),
        LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default() // retention by time and size wants nothing gone
        },
        0,
        0,
        NOW_MS,
    )?;
    let r: SharedReplica = Arc::new(Mutex::new(ReplicaLog::open(
        chronik_storage::fs::real(),
        dir.path(),
        Arc::new(Mutex::new(log)),
        NOW_MS,
    )?));
    write(&r)?;
    let before = segments(dir.path())?;
    // DeleteRecords in a replicated log moves the log start and keeps the segments.
    lock_log(lock(&r).log()).delete_records_before(35)?;
    assert_eq!(segments(dir.path())?, before);

    let point = lock(&r)
        .plan_retention(NOW_MS, Some(log_id(TERM, ENTRIES)))
        .ok_or("the entries below the log start can be purged")?;
    assert_eq!(lock(&r).offset_after(point.index), 35);
    lock(&r).purge(point)?;
    let after = segments(dir.path())?;
    assert!(after.len() < before.len(), "{after:?}");
    assert_eq!(lock_log(lock(&r).log()).log_start_offset(), 35);
    assert_eq!(
        lock(&r).plan_retention(NOW_MS, Some(log_id(TERM, ENTRIES))),
        None
    );
    Ok(())
}

#[test]
fn a_snapshot_over_entries_this_replica_has_still_carries_out_their_delete_records() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r = open(dir.path())?;
    {
        let mut g = lock(&r);
        let entries = (1..=10).map(|i| Entry {
            log_id: log_id(TERM, i),
            payload: EntryPayload::Normal(RecordBatch(
                uncompressed_batch(1, NOW_MS, &value(i)).into(),
            )),
        });
        g.append(entries, NOW_MS)?;
        // Entry 11: a DeleteRecords log-start request at offset 4; entry 12 one more batch.
        let request = Entry {
            log_id: log_id(TERM, 11),
            payload: EntryPayload::Normal(RecordBatch(
                chronik_storage::control::log_start_batch(4, 0).into(),
            )),
        };
        let more = Entry {
            log_id: log_id(TERM, 12),
            payload: EntryPayload::Normal(RecordBatch(
                uncompressed_batch(1, NOW_MS, &value(12)).into(),
            )),
        };
        g.append([request, more], NOW_MS)?;
        g.sync()?;
        // Nothing applied yet, though the commit hint already covers it all (openraft saves
        // it before applying); a leader's snapshot covering all of it arrives.
        g.save_committed(Some(log_id(TERM, 12)));
        let end = g.offset_after(12);
        g.install_snapshot(log_id(TERM, 12), end, None, None, NOW_MS)?;
        assert_eq!(g.last_log_id(), Some(log_id(TERM, 12)), "the log was kept");
    }
    assert_eq!(lock_log(lock(&r).log()).log_start_offset(), 4);
    Ok(())
}
