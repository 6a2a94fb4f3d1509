//! Retention of a replicated log at the replica level: `plan_retention` picks the last applied
//! entry below where retention wants the log to start; the purge forgets the entries, then
//! deletes the segments below (never data of a kept entry); a restart rebuilds the same log and
//! the state machine offers the purge point as its snapshot.

use chronik_replication::log_store::lock;
use chronik_replication::replica_log::{lock_log, log_id};
use chronik_replication::types::Entry;
use chronik_replication::{PartitionStateMachine, RecordBatch, ReplicaLog, SharedReplica};
use chronik_storage::batch_builder::{self, uncompressed_batch};
use chronik_storage::config::LogConfig;
use chronik_storage::PartitionLog;
use openraft::storage::RaftStateMachine;
use openraft::EntryPayload;
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
    assert_eq!(
        snapshot.snapshot.into_inner(),
        start.to_be_bytes().to_vec(),
        "the snapshot ends where the log now starts"
    );
    Ok(())
}

#[test]
fn retention_stops_at_the_segment_of_the_first_idempotent_batch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r = open(dir.path())?;
    // Retention alone would go well past entry 20 (it keeps about the last 30 entries).
    write_with(&r, Some(20))?;
    let producer_segment = lock_log(lock(&r).log())
        .first_producer_segment()
        .ok_or("an idempotent batch was written")?;
    assert!(producer_segment > 0);
    let point = lock(&r)
        .plan_retention(NOW_MS, Some(log_id(TERM, ENTRIES)))
        .ok_or("segments before the producer's can go")?;
    assert_eq!(lock(&r).offset_after(point.index), producer_segment);
    lock(&r).purge(point)?;
    assert_eq!(
        lock_log(lock(&r).log()).log_start_offset(),
        producer_segment
    );
    assert_eq!(
        lock(&r).plan_retention(NOW_MS, Some(log_id(TERM, ENTRIES))),
        None
    );
    // A restart rebuilds the same producer state: the producer's batch is still there.
    lock(&r).checkpoint()?;
    drop(r);
    let r = open(dir.path())?;
    assert_eq!(
        lock_log(lock(&r).log()).first_producer_segment(),
        Some(producer_segment)
    );
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

    let r = open(dir.path())?;
    let g = lock(&r);
    assert_eq!(g.last_log_id(), Some(snapshot));
    assert_eq!(g.index().first_index(), 201);
    let log = lock_log(g.log());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
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
        g.install_snapshot(log_id(TERM, 12), end, None, NOW_MS)?;
        assert_eq!(g.last_log_id(), Some(log_id(TERM, 12)), "the log was kept");
    }
    assert_eq!(lock_log(lock(&r).log()).log_start_offset(), 4);
    Ok(())
}
