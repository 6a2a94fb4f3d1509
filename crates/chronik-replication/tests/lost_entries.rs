//! A replica whose log opens shorter than it recorded it to be (a corruption cut entries it had,
//! maybe committed ones) knows it: `ReplicaLog::lost_upto`, and a committed vote for itself is
//! no longer committed (it must not resume leading with that log).

use chronik_replication::replica_log::log_id;
use chronik_replication::types::{Entry, Vote};
use chronik_replication::{RecordBatch, ReplicaLog};
use chronik_storage::batch_builder::uncompressed_batch;
use chronik_storage::config::LogConfig;
use chronik_storage::PartitionLog;
use openraft::EntryPayload;
use std::path::Path;
use std::sync::{Arc, Mutex};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TERM: u64 = 2;
const ENTRIES: u64 = 20;

fn open(dir: &Path) -> Result<ReplicaLog, Box<dyn std::error::Error>> {
    let (log, _) = PartitionLog::open(dir, LogConfig::default(), 0, 0, 0)?;
    Ok(ReplicaLog::open(
        chronik_storage::fs::real(),
        dir,
        Arc::new(Mutex::new(log)),
        0,
    )?)
}

/// A replica of ENTRIES batches, leader of TERM (committed vote for node 1), committed up to
/// `committed`, all durable, stopped cleanly (checkpoint: commit point and last entry written).
fn write_replica(dir: &Path, committed: u64) -> TestResult {
    let mut r = open(dir)?;
    let entries = (1..=ENTRIES).map(|i| Entry {
        log_id: log_id(TERM, i),
        payload: EntryPayload::Normal(RecordBatch(
            uncompressed_batch(1, 1_700_000_000_000, format!("value-{i}").as_bytes()).into(),
        )),
    });
    r.append(entries, 0)?;
    r.sync()?;
    // What the flush path reports once the fdatasync returned (LogStore::append).
    r.mark_durable(log_id(TERM, ENTRIES));
    r.save_vote(Vote::new_committed(TERM, 1))?;
    r.save_committed(Some(log_id(TERM, committed)));
    r.checkpoint()?;
    Ok(())
}

fn segment(dir: &Path) -> std::path::PathBuf {
    dir.join("00000000000000000000.log")
}

#[test]
fn a_log_cut_below_its_recorded_end_reports_that_end_and_uncommits_the_vote() -> TestResult {
    let dir = tempfile::tempdir()?;
    // The commit hint lags (a follower learns the commit point with the next heartbeat): the
    // recorded last entry is what counts.
    write_replica(dir.path(), ENTRIES - 5)?;
    let size = std::fs::metadata(segment(dir.path()))?.len();
    // Into the middle of the log: what start-up recovery leaves after a corruption there.
    std::fs::OpenOptions::new()
        .write(true)
        .open(segment(dir.path()))?
        .set_len(size / 2)?;

    let r = open(dir.path())?;
    let last = r.last_log_id().map(|l| l.index);
    assert!(last < Some(ENTRIES), "the cut left {last:?}");
    assert_eq!(r.lost_upto(), Some(log_id(TERM, ENTRIES)));
    // The commit point goes back to the end of what is left (the state machine starts there,
    // and the leader sends the rest again).
    assert_eq!(r.state().committed, r.last_log_id());
    let vote = r.state().vote.ok_or("no vote")?;
    assert!(!vote.committed, "{vote:?}");
    assert_eq!(vote.leader_id.term, TERM);
    assert_eq!(vote.leader_id.voted_for, Some(1));
    // Stored so: a second restart before the repair still does not resume leading.
    drop(r);
    let mut again = open(dir.path())?;
    assert!(!again.state().vote.ok_or("no vote")?.committed);
    // A checkpoint before the repair keeps the end it had: a third start is still guarded.
    again.checkpoint()?;
    drop(again);
    assert_eq!(open(dir.path())?.lost_upto(), Some(log_id(TERM, ENTRIES)));
    Ok(())
}

#[test]
fn only_durable_entries_are_recorded_as_the_end_of_the_log() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut r = open(dir.path())?;
    r.append(
        (1..=3).map(|i| Entry {
            log_id: log_id(TERM, i),
            payload: EntryPayload::Normal(RecordBatch(
                uncompressed_batch(1, 1_700_000_000_000, b"v").into(),
            )),
        }),
        0,
    )?;
    r.checkpoint()?;
    assert_eq!(r.state().last_log, None, "nothing was reported durable yet");
    r.mark_durable(log_id(TERM, 2));
    r.checkpoint()?;
    assert_eq!(r.state().last_log, Some(log_id(TERM, 2)));
    // A flush reported after a truncation removed its entry is ignored.
    r.truncate(3, 0)?;
    r.mark_durable(log_id(TERM, 3));
    r.checkpoint()?;
    assert_eq!(r.state().last_log, Some(log_id(TERM, 2)));
    Ok(())
}

#[test]
fn an_intact_log_has_lost_nothing_and_keeps_its_committed_vote() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_replica(dir.path(), ENTRIES)?;
    let r = open(dir.path())?;
    assert_eq!(r.last_log_id().map(|l| l.index), Some(ENTRIES));
    assert_eq!(r.state().last_log, Some(log_id(TERM, ENTRIES)));
    assert_eq!(r.lost_upto(), None);
    assert!(r.state().vote.ok_or("no vote")?.committed);
    Ok(())
}
