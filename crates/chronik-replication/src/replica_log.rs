//! `ReplicaLog`: one partition replica's Raft log, which is its segment log plus the
//! Raft-only entries, the entry index over both, and the vote/commit state.
//!
//! Durability order (so that what survives a crash is always a prefix of what was appended,
//! and an entry never changes its Raft index): batches are written to the segment; before a
//! Raft-only entry is written, the segment is fsynced; the Raft-only entry is fsynced at once;
//! an append is reported durable only after the segment's fsync. Truncation is durable before
//! anything is appended after it.

use crate::entry_index::{EntryIndex, EntryLoc};
use crate::raft_entries::{RaftEntriesFile, RaftOnlyEntry};
use crate::raft_state::RaftState;
use crate::types::{Applied, LogId, Membership, NotAppended, RecordBatch};
use bytes::Bytes;
use chronik_storage::fs::FileSystem;
use chronik_storage::producer_state::{ProducerError, SequenceCheck};
use chronik_storage::state_snapshot::StateSnapshot;
use chronik_storage::{PartitionLog, StorageError};
use chronik_types::Offset;
use openraft::{CommittedLeaderId, EntryPayload};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The partition log as shared with the Kafka handlers (fetch reads it under this lock).
pub type SharedLog = Arc<Mutex<PartitionLog>>;

pub fn lock_log(log: &SharedLog) -> MutexGuard<'_, PartitionLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

/// What one `append` call did to the files, so the caller knows what to fsync.
#[derive(Debug, Default)]
pub struct AppendOutcome {
    pub batches_written: bool,
}

#[derive(Debug)]
pub struct ReplicaLog {
    dir: PathBuf,
    log: SharedLog,
    index: EntryIndex,
    raft_only: RaftEntriesFile,
    state: RaftState,
    /// `state.committed` changed since the file was last written.
    state_dirty: bool,
    /// Set when the log opened shorter than it was recorded to be (a corruption cut entries it
    /// had): the last entry recorded; cleared once repaired. See `lost_upto`.
    lost_upto: Option<LogId>,
    /// The last entry known fdatasynced (reported by the appends' flushes); what a checkpoint
    /// records as `last_log`.
    durable: Option<LogId>,
    /// Retention: where the log may start once its Raft group purged the entries below
    /// (`plan_retention`; segments go in `purge`).
    retention_start: Offset,
    /// Retention: the entry the next snapshot is to end at (`plan_retention`).
    snapshot_point: Option<LogId>,
}

fn corrupt(dir: &Path, reason: String) -> StorageError {
    StorageError::Corrupt {
        path: dir.to_path_buf(),
        reason,
    }
}

/// The recorded end of the log (the last entry checkpointed, or the commit point if later)
/// when the log (after any cut) ends before it.
fn lost_upto(state: &RaftState, index: &EntryIndex) -> Option<LogId> {
    let had = state.last_log.max(state.committed)?;
    let last = index
        .last()
        .map(|(i, loc)| log_id(loc.term(), i))
        .or(state.purged);
    (last < Some(had)).then_some(had)
}

impl ReplicaLog {
    /// Opens the Raft view of `log` (already recovered by `PartitionLog::open`): rebuilds the
    /// entry index, cuts whatever does not fit, and switches the log to replicated mode with
    /// the high watermark at the last known commit.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        log: SharedLog,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        let state = RaftState::load(dir)?;
        let mut raft_only = RaftEntriesFile::open(fs, dir)?;
        let first = state
            .first_index
            .max(state.purged.map_or(0, |p| p.index + 1));
        let mut batches = lock_log(&log).batch_locations()?;
        if let Some(purged) = state.purged {
            // After a purge the kept entries begin at `first_offset`: a batch starts there, or
            // the log ends there. Otherwise a snapshot install was cut short by a crash after
            // it recorded the snapshot (below) and before it replaced the log: finish it.
            let mut l = lock_log(&log);
            let aligned = l.log_end_offset() == state.first_offset
                || batches.iter().any(|b| b.base_offset == state.first_offset);
            if !aligned {
                tracing::warn!(dir = %dir.display(), snapshot = %purged, offset = state.first_offset,
                    "finishing a snapshot install cut short: the log starts over at the snapshot's end");
                // The install stored the snapshot's producer state before it recorded the
                // snapshot (none: the snapshot had none).
                let log_dir = l.dir().to_path_buf();
                let producers = StateSnapshot::list(&log_dir)?
                    .contains(&state.first_offset)
                    .then(|| StateSnapshot::load(&log_dir, state.first_offset))
                    .transpose()?;
                l.reset_to(state.first_offset, producers, now_ms)?;
                batches = Vec::new();
            }
        }
        // Producer-state files beyond the log are from an install that never got recorded.
        lock_log(&log).remove_state_files_above_end()?;
        let locs: Vec<_> = raft_only.entries().iter().map(RaftOnlyEntry::loc).collect();
        let (index, bad) = EntryIndex::rebuild(first, state.first_offset, &batches, &locs);
        let mut state = state;
        let lost_upto = lost_upto(&state, &index);
        if let Some(had) = lost_upto {
            tracing::warn!(dir = %dir.display(), last = ?index.last().map(|(i, _)| i),
                had = %had,
                "this replica lost Raft entries it had (its log was cut below its recorded end); \
                 it repairs them from the leader and neither votes for a log shorter than it had \
                 nor stands for election until then");
            // What was committed beyond the cut is not here any more: the commit point (and
            // with it the high watermark and the state machine's applied entry) goes back to
            // the end of the log, and the leader sends the rest again.
            let last = index
                .last()
                .map(|(i, loc)| log_id(loc.term(), i))
                .or(state.purged);
            state.committed = state.committed.min(last);
            // A leader that restarts with a committed vote for itself resumes leading: not
            // with a log that lacks entries it had.
            if let Some(v) = state.vote.filter(|v| v.committed) {
                state.vote = Some(crate::types::Vote::new(
                    v.leader_id.term,
                    v.leader_id.voted_for.unwrap_or_default(),
                ));
            }
            state.store(dir)?;
        }
        let committed_end = state
            .committed
            .map_or(state.first_offset, |c| index.offset_after(c.index));
        // Log-start requests (DeleteRecords) committed before the restart hold again.
        let committed_index = state.committed.map(|c| c.index);
        let log_start = raft_only
            .entries()
            .iter()
            .filter(|e| committed_index.is_some_and(|c| e.index <= c))
            .filter_map(|e| match e.outcome {
                Some(NotAppended::LogStart { offset }) => Some(offset),
                _ => None,
            })
            .max();
        {
            let mut l = lock_log(&log);
            l.set_replicated(committed_end);
            if let Some(offset) = log_start {
                l.delete_records_before(offset.min(committed_end).max(0))?;
            }
            if let Some(bad) = bad {
                if state.committed.is_some_and(|c| c.index >= bad.index) {
                    return Err(corrupt(
                        dir,
                        format!(
                            "the Raft log is inconsistent at index {} (offset {}), below the commit point {:?}",
                            bad.index, bad.offset, state.committed
                        ),
                    ));
                }
                tracing::warn!(dir = %dir.display(), index = bad.index, offset = bad.offset,
                    "cutting an uncommitted Raft log suffix that does not fit together");
                l.truncate_to(bad.offset, now_ms)?;
            }
        }
        if let Some(bad) = bad {
            raft_only.truncate_from(bad.index)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            log,
            index,
            raft_only,
            state,
            state_dirty: false,
            lost_upto,
            durable: None,
            retention_start: 0,
            snapshot_point: None,
        }
        .with_durable_from_state())
    }

    /// The last entry this replica had recorded (durably) before its log was cut below it at
    /// open (None: nothing it had is missing). Until its log reaches that entry again it must
    /// not help elect a leader whose log is shorter (Raft's vote rule, applied to the log it had),
    /// nor lead.
    pub fn lost_upto(&self) -> Option<LogId> {
        self.lost_upto
    }

    /// The log is at least as long as it was before the cut again: no longer guarded.
    pub fn repaired(&mut self) {
        self.lost_upto = None;
    }

    /// At open: what the last checkpoint recorded durable and is still in the log.
    fn with_durable_from_state(mut self) -> Self {
        self.durable = self.state.last_log.min(self.last_log_id());
        self
    }

    /// An append up to `id` was fdatasynced; ignored if the entry is no longer in the log (a
    /// truncation came first).
    pub fn mark_durable(&mut self, id: LogId) {
        let present = self
            .index
            .get(id.index)
            .is_some_and(|loc| loc.term() == id.leader_id.term);
        if present {
            self.durable = self.durable.max(Some(id));
        }
    }

    pub fn log(&self) -> &SharedLog {
        &self.log
    }
    pub fn state(&self) -> &RaftState {
        &self.state
    }
    pub fn index(&self) -> &EntryIndex {
        &self.index
    }

    pub fn last_log_id(&self) -> Option<LogId> {
        match self.index.last() {
            Some((i, loc)) => Some(log_id(loc.term(), i)),
            None => self.state.purged,
        }
    }

    /// Reads the entries with indexes in `[start, end)` that are present.
    pub fn read(&self, start: u64, end: u64) -> Result<Vec<crate::types::Entry>, StorageError> {
        let start = start.max(self.index.first_index());
        let end = end.min(self.index.next_index());
        let mut out = Vec::with_capacity(usize::try_from(end.saturating_sub(start)).unwrap_or(0));
        for i in start..end {
            let Some(loc) = self.index.get(i) else { break };
            let payload = match loc {
                EntryLoc::Batch { base_offset, .. } => {
                    let bytes = lock_log(&self.log).read_batch_at(*base_offset)?;
                    EntryPayload::Normal(RecordBatch(Bytes::from(bytes)))
                }
                EntryLoc::RaftOnly { .. } => match self.raft_only.get(i) {
                    Some(RaftOnlyEntry {
                        membership: Some(m),
                        ..
                    }) => EntryPayload::Membership(m.clone()),
                    // A log-start request goes to followers as the request it was, so that
                    // every replica carries it out when it applies it.
                    Some(RaftOnlyEntry {
                        outcome: Some(NotAppended::LogStart { offset }),
                        ..
                    }) => EntryPayload::Normal(RecordBatch(Bytes::from(
                        chronik_storage::control::log_start_batch(*offset, 0),
                    ))),
                    Some(_) => EntryPayload::Blank,
                    None => return Err(corrupt(&self.dir, format!("Raft-only entry {i} missing"))),
                },
            };
            out.push(crate::types::Entry {
                log_id: log_id(loc.term(), i),
                payload,
            });
        }
        Ok(out)
    }

    /// Appends entries (not yet durable; see `sync`). Each must carry the next index.
    pub fn append(
        &mut self,
        entries: impl IntoIterator<Item = crate::types::Entry>,
        now_ms: i64,
    ) -> Result<AppendOutcome, StorageError> {
        let mut outcome = AppendOutcome::default();
        for entry in entries {
            let index = entry.log_id.index;
            let term = entry.log_id.leader_id.term;
            if index > self.index.next_index() && self.index.last().is_none() {
                // An empty log may start above its next index (openraft allows it); remember
                // where, so the entry index is rebuilt from the same place.
                self.index = EntryIndex::new(index, self.index.end_offset());
                self.state.first_index = index;
                self.state.first_offset = self.index.end_offset();
                self.state.store(&self.dir)?;
                self.state_dirty = false;
            }
            if index != self.index.next_index() {
                return Err(corrupt(
                    &self.dir,
                    format!(
                        "append of entry {index} when the next index is {}",
                        self.index.next_index()
                    ),
                ));
            }
            match entry.payload {
                EntryPayload::Normal(RecordBatch(bytes)) => {
                    let mut bytes = bytes.to_vec();
                    let whole = chronik_storage::batch::peek_size(&bytes).map(|(_, s)| s);
                    if whole != Some(bytes.len()) {
                        return Err(corrupt(
                            &self.dir,
                            format!("entry {index} is not exactly one record batch"),
                        ));
                    }
                    let header = chronik_storage::batch::validate(&bytes)?;
                    if let Some(offset) = chronik_storage::control::log_start_of(&bytes) {
                        let request = NotAppended::LogStart { offset };
                        self.append_raft_only(index, term, None, Some(request), &mut outcome)?;
                        continue;
                    }
                    if let Some(not_appended) = self.producer_check(&header, &bytes) {
                        // Kept out of the log, alike on every replica.
                        self.append_raft_only(index, term, None, Some(not_appended), &mut outcome)?;
                        continue;
                    }
                    let epoch = i32::try_from(term).map_err(|_| {
                        corrupt(&self.dir, format!("term {term} exceeds a leader epoch"))
                    })?;
                    let info = lock_log(&self.log).append_entry(&mut bytes, epoch, now_ms)?;
                    self.index.push(EntryLoc::Batch {
                        term,
                        base_offset: info.base_offset,
                        next_offset: info.last_offset + 1,
                    });
                    outcome.batches_written = true;
                }
                EntryPayload::Blank => {
                    self.append_raft_only(index, term, None, None, &mut outcome)?;
                }
                EntryPayload::Membership(m) => {
                    self.append_raft_only(index, term, Some(m), None, &mut outcome)?;
                }
            }
        }
        Ok(outcome)
    }

    /// An idempotent producer's batch that is not to be appended: a retry of a batch still
    /// remembered (its offsets), or a sequence or epoch error.
    fn producer_check(
        &self,
        header: &chronik_storage::batch::BatchHeader,
        batch: &[u8],
    ) -> Option<NotAppended> {
        match lock_log(&self.log).check_producer(header, batch) {
            Ok(SequenceCheck::Append) => None,
            Ok(SequenceCheck::Duplicate(b)) => Some(NotAppended::Duplicate {
                base_offset: b.base_offset,
                last_offset: b.last_offset,
            }),
            Err(ProducerError::InvalidProducerEpoch { .. }) => {
                Some(NotAppended::InvalidProducerEpoch)
            }
            Err(ProducerError::CoordinatorFenced { .. }) => Some(NotAppended::CoordinatorFenced),
            Err(_) => Some(NotAppended::OutOfOrderSequence),
        }
    }

    /// Writes a Raft-only entry durably: everything before it is fsynced first.
    fn append_raft_only(
        &mut self,
        index: u64,
        term: u64,
        membership: Option<Membership>,
        not_appended: Option<NotAppended>,
        outcome: &mut AppendOutcome,
    ) -> Result<(), StorageError> {
        if outcome.batches_written {
            lock_log(&self.log).sync_active()?;
            outcome.batches_written = false;
        }
        let offset = self.index.end_offset();
        self.raft_only.append(RaftOnlyEntry {
            index,
            term,
            offset,
            membership,
            outcome: not_appended,
        })?;
        self.raft_only.sync()?;
        self.index.push(EntryLoc::RaftOnly { term, offset });
        Ok(())
    }

    /// The active segment's file (what an fdatasync must cover after an append).
    pub fn active_file(
        &self,
    ) -> Result<(Arc<dyn chronik_storage::fs::LogFile>, PathBuf), StorageError> {
        lock_log(&self.log).active_file()
    }

    /// Makes every appended batch durable (fdatasync of the active segment).
    pub fn sync(&self) -> Result<(), StorageError> {
        lock_log(&self.log).sync_active()
    }

    /// Removes entries from `index` on, durably.
    pub fn truncate(&mut self, index: u64, now_ms: i64) -> Result<(), StorageError> {
        if let Some(c) = self.state.committed {
            if index <= c.index {
                return Err(corrupt(
                    &self.dir,
                    format!("refusing to truncate committed entry {index} (committed {c})"),
                ));
            }
        }
        let offset = self.index.truncate(index);
        lock_log(&self.log).truncate_to(offset, now_ms)?;
        self.raft_only.truncate_from(index)?;
        self.durable = self.durable.min(self.last_log_id());
        Ok(())
    }

    /// Forgets entries up to `upto` (covered by a snapshot), then deletes the segments below
    /// both the retention start planned (`plan_retention`) and the first entry kept: the data
    /// stays until retention wants it gone, and no kept entry loses its data. The purge point
    /// is on disk before any segment goes.
    pub fn purge(&mut self, upto: LogId) -> Result<(), StorageError> {
        self.index.purge(upto.index);
        self.state.purged = Some(upto);
        self.state.first_index = self.index.first_index();
        self.state.first_offset = self.index.offset_after(upto.index);
        self.state.store(&self.dir)?;
        self.state_dirty = false;
        self.raft_only.purge_upto(upto.index)?;
        let below = self.retention_start.min(self.state.first_offset);
        // The purge is recorded: a failure here leaves segments that the next round deletes.
        match self.delete_purged_segments(&mut lock_log(&self.log), below) {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(dir = %self.dir.display(), segments = deleted, log_start = below,
                    "retention deleted segments of a replicated log");
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "deleting purged segments failed; the next retention round tries again");
            }
        }
        Ok(())
    }

    /// Deletes the segments wholly below `below` (at most the first kept entry's offset). The
    /// producer and transaction state as of the first kept entry is stored first: it stands
    /// for the batches deleted, at a restart and in the snapshot a lagging replica installs.
    fn delete_purged_segments(
        &self,
        log: &mut PartitionLog,
        below: Offset,
    ) -> Result<usize, StorageError> {
        let first = self.state.first_offset;
        let first_base = log.first_segment_base();
        if below.min(first) <= first_base {
            return Ok(0); // nothing to delete
        }
        if !StateSnapshot::list(log.dir())?.contains(&first) {
            log.store_state_at(first)?;
        }
        log.delete_segments_before(below.min(first))
    }

    /// The producer and transaction state of every batch below `offset` (what a snapshot
    /// ending there carries).
    pub fn state_at(&self, offset: Offset) -> Result<StateSnapshot, StorageError> {
        lock_log(&self.log).state_at(offset)
    }

    /// Retention of a replicated log: where its retention rules (`retention.ms`,
    /// `retention.bytes`) want it to start (held at the first batch of an idempotent or
    /// transactional producer), and the last entry entirely below that which is
    /// applied (`applied`) and not purged yet. That entry is where the next snapshot ends
    /// (`snapshot_point`) and up to where the Raft group may purge; `purge` then deletes the
    /// segments below. None when there is nothing to purge.
    pub fn plan_retention(&mut self, now_ms: i64, applied: Option<LogId>) -> Option<LogId> {
        let start = {
            let log_arc = Arc::clone(&self.log);
            let mut log = lock_log(&log_arc);
            // At least the log start (DeleteRecords moves it without deleting segments).
            let start = log.retention_start(now_ms);
            if self.state.purged.is_some() {
                // Segments wholly below entries purged before go at once (left by a crash
                // between a purge and their deletion, or below a DeleteRecords offset).
                if let Err(e) = self.delete_purged_segments(&mut log, start) {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "deleting purged segments failed");
                }
            }
            start
        };
        if start <= self.state.first_offset {
            return None; // every entry below `start` is purged already
        }
        let index = self
            .index
            .last_ending_at_or_before(start)?
            .min(applied?.index);
        let loc = self.index.get(index)?;
        let point = log_id(loc.term(), index);
        self.retention_start = self.retention_start.max(start);
        self.snapshot_point = self.snapshot_point.max(Some(point));
        Some(point)
    }

    /// The entry the next snapshot is to end at (None: the last applied one).
    pub fn snapshot_point(&self) -> Option<LogId> {
        self.snapshot_point
    }

    pub fn save_vote(&mut self, vote: crate::types::Vote) -> Result<(), StorageError> {
        self.state.vote = Some(vote);
        self.state.store(&self.dir)?;
        self.state_dirty = false;
        Ok(())
    }

    /// Records the commit point (written to disk by `checkpoint`).
    pub fn save_committed(&mut self, committed: Option<LogId>) {
        if self.state.committed != committed {
            self.state.committed = committed;
            self.state_dirty = true;
        }
    }

    /// Writes the commit point and the last entry if they changed (periodically and at
    /// shutdown); the last entry only once it is durable.
    pub fn checkpoint(&mut self) -> Result<(), StorageError> {
        // Only what is known durable (no fdatasync here: a failed one must stop the group, which
        // only the flush path does); until repaired, the end it had stays recorded (a restart
        // before the repair keeps the guard).
        let last = self.durable.max(self.lost_upto);
        if self.state.last_log != last {
            self.state.last_log = last;
            self.state_dirty = true;
        }
        if self.state_dirty {
            self.state.store(&self.dir)?;
            self.state_dirty = false;
        }
        Ok(())
    }

    /// Applies a committed entry: moves the high watermark to its end and answers its offsets.
    pub fn apply(&self, entry_id: LogId) -> Result<Applied, StorageError> {
        let applied = match self.index.get(entry_id.index) {
            Some(EntryLoc::Batch {
                base_offset,
                next_offset,
                ..
            }) => Applied::Batch {
                base_offset: *base_offset,
                last_offset: next_offset - 1,
            },
            Some(EntryLoc::RaftOnly { .. }) => Applied::RaftOnly,
            None => {
                return Err(corrupt(
                    &self.dir,
                    format!("applying entry {entry_id} that is not in the log"),
                ))
            }
        };
        let hw = self.index.offset_after(entry_id.index);
        lock_log(&self.log).advance_high_watermark(hw);
        match applied {
            Applied::RaftOnly => self.apply_kept_out(entry_id.index),
            other => Ok(other),
        }
    }

    /// Applies an entry kept out of the log (read back as blank by openraft): a log-start
    /// request moves the log start offset (never past the commit point); another answers why
    /// its batch was kept out.
    pub fn apply_kept_out(&self, index: u64) -> Result<Applied, StorageError> {
        match self.raft_only.get(index).and_then(|e| e.outcome) {
            Some(NotAppended::LogStart { offset }) => {
                let mut log = lock_log(&self.log);
                let target = offset.min(log.high_watermark());
                let low_watermark = log.delete_records_before(target.max(0))?;
                Ok(Applied::LogStart { low_watermark })
            }
            Some(not_appended) => Ok(Applied::NotAppended(not_appended)),
            None => Ok(Applied::RaftOnly),
        }
    }

    /// Installs a snapshot covering every entry up to `last`, whose log ends at `end_offset`.
    /// A replica that holds that entry keeps its log; otherwise the log starts over, empty, at
    /// `end_offset` (a Kafka follower starting at the leader's log start).
    pub fn install_snapshot(
        &mut self,
        last: LogId,
        end_offset: Offset,
        producers: Option<StateSnapshot>,
        membership: Option<(LogId, Membership)>,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let have = self
            .index
            .get(last.index)
            .is_some_and(|l| l.term() == last.leader_id.term && l.end_offset() == end_offset);
        if !have {
            // The snapshot's producer state is stored first, then the snapshot is recorded: a
            // crash before the log is replaced leaves a log that does not begin where the
            // state says, and `open` finishes the reset with that producer state.
            let producers = producers.filter(|p| p.offset == end_offset);
            if let Some(p) = &producers {
                p.store(lock_log(&self.log).dir())?;
            }
            self.state.purged = Some(last);
            self.state.first_index = last.index + 1;
            self.state.first_offset = end_offset;
            self.state.committed = self.state.committed.max(Some(last));
            self.state.store(&self.dir)?;
            lock_log(&self.log).reset_to(end_offset, producers, now_ms)?;
            self.index = EntryIndex::new(last.index + 1, end_offset);
            let kept = membership.map(|(id, m)| RaftOnlyEntry {
                index: id.index,
                term: id.leader_id.term,
                offset: end_offset,
                membership: Some(m),
                outcome: None,
            });
            self.raft_only.replace_all(kept.into_iter().collect())?;
        } else {
            // The entries are here but are now applied without `apply`: log-start requests
            // (DeleteRecords) among them still move the log start. All of them up to `last`
            // (the commit hint may be ahead of what was applied; the log start only moves
            // forward, so one carried out before changes nothing).
            let starts: Vec<Offset> = self
                .raft_only
                .entries()
                .iter()
                .filter(|e| e.index <= last.index)
                .filter_map(|e| match e.outcome {
                    Some(NotAppended::LogStart { offset }) => Some(offset.min(end_offset)),
                    _ => None,
                })
                .collect();
            let mut log = lock_log(&self.log);
            log.advance_high_watermark(end_offset);
            for offset in starts {
                log.delete_records_before(offset.max(0))?;
            }
        }
        self.state.committed = self.state.committed.max(Some(last));
        self.state.store(&self.dir)?;
        self.state_dirty = false;
        lock_log(&self.log).advance_high_watermark(end_offset);
        Ok(())
    }

    /// The last membership at or below `index`, with its log id.
    pub fn membership_upto(&self, index: u64) -> Option<(LogId, Membership)> {
        self.raft_only
            .last_membership_upto(index)
            .and_then(|e| e.membership.clone().map(|m| (log_id(e.term, e.index), m)))
    }

    /// The Kafka offset after entry `index` (the high watermark for that commit index).
    pub fn offset_after(&self, index: u64) -> Offset {
        self.index.offset_after(index)
    }
}
