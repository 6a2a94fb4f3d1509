//! `PartitionLog`: the ordered segments of one partition, with `log_start_offset`,
//! `log_end_offset` and the `high_watermark` (on a single node: the flushed end offset, so a
//! consumer never sees a record that a crash could take back).

use crate::batch::{self, BatchHeader};
use crate::cleaner::{CleanInput, CleanedSegment, SWAP_SUFFIX};
use crate::config::{LogConfig, TimestampType};
use crate::control::{self, ControlType};
use crate::error::{IoContext, StorageError};
use crate::fs::{FileSystem, LogFile};
use crate::producer_state::{ProducerBatch, ProducerError, ProducerStateManager, SequenceCheck};
use crate::recovery::{self, ScanStop};
use crate::segment::{self, LogSegment, SegmentSlice, LOG_SUFFIX};
use crate::state_snapshot::StateSnapshot;
use crate::txn_state::{AbortedTxn, TransactionState};
use chronik_types::Offset;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: Offset,
    pub last_offset: Offset,
    /// Set when the topic uses LogAppendTime.
    pub log_append_time_ms: Option<i64>,
    /// A retried idempotent batch already in the log: nothing was written.
    pub duplicate: bool,
}

/// What recovery found and did, for the operator's log.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub truncated: Option<(PathBuf, u64, ScanStop)>,
    pub deleted_segments: Vec<PathBuf>,
    pub log_end_offset: Offset,
}

/// A file to fdatasync and the offset that becomes durable once it is.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    pub file: Arc<dyn LogFile>,
    pub path: PathBuf,
    pub upto: Offset,
}

/// What an append rewrites in each batch besides its base offset.
#[derive(Debug, Clone, Copy, Default)]
struct Stamp {
    log_append_time_ms: Option<i64>,
    leader_epoch: Option<i32>,
}

#[derive(Debug)]
pub struct PartitionLog {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<Offset, LogSegment>,
    log_start_offset: Offset,
    log_end_offset: Offset,
    high_watermark: Offset,
    offline: bool,
    producers: ProducerStateManager,
    /// Open and aborted transactions.
    txns: TransactionState,
    /// End of the closed segments at the last compaction (compaction runs when it grows).
    compacted_upto: Offset,
    /// Replicated (Raft) mode: the high watermark is the commit point, set by the replication
    /// layer, instead of the flushed end of the log.
    replicated: bool,
}

fn list_segment_bases(dir: &Path) -> Result<Vec<Offset>, StorageError> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(LOG_SUFFIX) {
            if let Ok(base) = stem.parse::<Offset>() {
                bases.push(base);
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering everything from `recovery_point` on.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        recovery_point: Offset,
        log_start_checkpoint: Offset,
        now_ms: i64,
    ) -> Result<(Self, RecoveryReport), StorageError> {
        Self::open_on(
            crate::fs::real(),
            dir,
            config,
            recovery_point,
            log_start_checkpoint,
            now_ms,
        )
    }

    /// `open` on a given file system (the fault-injecting one in tests).
    pub fn open_on(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: LogConfig,
        recovery_point: Offset,
        log_start_checkpoint: Offset,
        now_ms: i64,
    ) -> Result<(Self, RecoveryReport), StorageError> {
        std::fs::create_dir_all(dir).at(dir)?;
        crate::cleaner::recover_interrupted(dir)?;
        let bases = list_segment_bases(dir)?;
        // Segments from the one holding the recovery point onwards get a full CRC scan.
        let first_unflushed = bases
            .iter()
            .rev()
            .find(|b| **b <= recovery_point)
            .copied()
            .unwrap_or(Offset::MIN);
        let mut opened = Vec::new();
        for base in &bases {
            opened.push(LogSegment::open(
                fs.as_ref(),
                dir,
                *base,
                *base >= first_unflushed,
                now_ms,
            )?);
        }
        let scans: Vec<_> = opened
            .iter()
            .map(|(s, scan)| (s.base_offset, scan))
            .collect();
        let plan = recovery::plan(&scans);
        let mut report = RecoveryReport::default();
        let mut segments = BTreeMap::new();
        // The batches of every kept segment, recorded into the producer state once the
        // producer-state file it starts from is chosen (below).
        let mut scanned: Vec<(Offset, Vec<(u64, BatchHeader)>)> = Vec::new();
        for (seg, scan) in opened {
            if plan.delete.contains(&seg.base_offset) {
                report.deleted_segments.push(seg.log_path().to_path_buf());
                seg.delete()?;
                continue;
            }
            if let Some((base, valid, stop)) = &plan.truncate {
                if *base == seg.base_offset {
                    seg.log_file().set_len(*valid).at(seg.log_path())?;
                    report.truncated = Some((seg.log_path().to_path_buf(), *valid, stop.clone()));
                }
            }
            let valid_bytes = match &plan.truncate {
                Some((base, valid, _)) if *base == seg.base_offset => *valid,
                _ => u64::MAX,
            };
            let valid: Vec<(u64, BatchHeader)> = scan
                .batches
                .iter()
                .filter(|(pos, _)| *pos < valid_bytes)
                .cloned()
                .collect();
            scanned.push((seg.base_offset, valid));
            segments.insert(seg.base_offset, seg);
        }
        // A segment cut to nothing after another one is dropped; the log keeps at least one.
        let empty_tail: Vec<Offset> = segments
            .iter()
            .skip(1)
            .filter(|(_, s)| s.is_empty())
            .map(|(b, _)| *b)
            .collect();
        for base in empty_tail {
            if let Some(seg) = segments.remove(&base) {
                report.deleted_segments.push(seg.log_path().to_path_buf());
                seg.delete()?;
            }
        }
        if segments.is_empty() {
            let base = log_start_checkpoint.max(0);
            segments.insert(base, LogSegment::create(fs.as_ref(), dir, base, now_ms)?);
            crate::fsutil::sync_dir(dir)?;
        }
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let log_end_offset = segments
            .values()
            .last()
            .map_or(first_base, |s| s.next_offset);
        // Whatever survived recovery is made durable before it is served.
        for seg in segments
            .values()
            .filter(|s| s.base_offset >= first_unflushed)
        {
            seg.sync()?;
        }
        report.log_end_offset = log_end_offset;
        let mut state = base_state(dir, first_base, log_end_offset)?;
        let from = state.offset;
        for (base, batches) in &scanned {
            let Some(seg) = segments.get(base) else {
                continue; // cut to nothing, dropped above
            };
            for (pos, h) in batches.iter().filter(|(_, h)| h.base_offset >= from) {
                state.record(h, control_at(seg, *pos, h)?);
            }
        }
        let StateSnapshot {
            producers, txns, ..
        } = state;
        let log = Self {
            fs,
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: log_start_checkpoint.max(first_base).min(log_end_offset),
            log_end_offset,
            high_watermark: log_end_offset,
            offline: false,
            producers,
            txns,
            compacted_upto: 0,
            replicated: false,
        };
        Ok((log, report))
    }

    /// Base offset of the first segment (the oldest data kept).
    pub fn first_segment_base(&self) -> Offset {
        self.segments
            .keys()
            .next()
            .copied()
            .unwrap_or(self.log_start_offset)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> Offset {
        self.log_end_offset
    }
    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }
    /// The last stable offset: the high watermark, or the first offset of the oldest open
    /// transaction if that is lower (`read_committed` consumers read up to here).
    pub fn last_stable_offset(&self) -> Offset {
        self.txns
            .first_unstable_offset()
            .map_or(self.high_watermark, |f| {
                f.max(self.log_start_offset).min(self.high_watermark)
            })
    }
    /// Aborted transactions with records in `[from, upto)`, for a `read_committed` fetch.
    pub fn aborted_transactions(&self, from: Offset, upto: Offset) -> Vec<AbortedTxn> {
        self.txns.aborted_between(from, upto)
    }
    /// Open and aborted transactions of this partition.
    pub fn transactions(&self) -> &TransactionState {
        &self.txns
    }
    pub fn is_offline(&self) -> bool {
        self.offline
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size_bytes).sum()
    }

    fn active(&self) -> Result<&LogSegment, StorageError> {
        self.segments
            .values()
            .last()
            .ok_or_else(|| StorageError::Corrupt {
                path: self.dir.clone(),
                reason: "log has no segment".into(),
            })
    }

    /// Appends producer batches that passed `batch::validate`: assigns offsets from the log end
    /// (rewriting each `base_offset`) and applies LogAppendTime if the topic uses it.
    pub fn append(&mut self, bytes: &mut [u8], now_ms: i64) -> Result<AppendInfo, StorageError> {
        let batches = batch::split_and_validate(bytes)?;
        self.append_validated(bytes, &batches, now_ms)
    }

    /// `append` for bytes already checked by `batch::split_and_validate`, whose result is
    /// `batches` (so the CRC of a produce request is computed once).
    pub fn append_validated(
        &mut self,
        bytes: &mut [u8],
        batches: &[(usize, BatchHeader)],
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        if self.offline {
            return Err(StorageError::LogOffline(self.dir.clone()));
        }
        if let Some(dup) = self.check_sequences(bytes, batches)? {
            return Ok(AppendInfo {
                base_offset: dup.base_offset,
                last_offset: dup.last_offset,
                log_append_time_ms: (self.config.timestamp_type == TimestampType::LogAppendTime)
                    .then_some(dup.max_timestamp),
                duplicate: true,
            });
        }
        let log_append = self.config.timestamp_type == TimestampType::LogAppendTime;
        let stamp = Stamp {
            log_append_time_ms: log_append.then_some(now_ms),
            leader_epoch: None,
        };
        self.write_at_end(bytes, batches, stamp, now_ms)
    }

    /// Writes validated batches at the log end: rewrites base offsets (and the stamps asked
    /// for), appends to the active segment, records producer state.
    fn write_at_end(
        &mut self,
        bytes: &mut [u8],
        batches: &[(usize, BatchHeader)],
        stamp: Stamp,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        let base_offset = self.log_end_offset;
        let mut next = base_offset;
        let mut headers: Vec<(usize, BatchHeader)> = Vec::with_capacity(batches.len());
        for (pos, h) in batches {
            let one = bytes
                .get_mut(*pos..*pos + h.size_bytes())
                .ok_or(crate::error::BatchError::Truncated)?;
            batch::set_base_offset(one, next).ok_or(crate::error::BatchError::Truncated)?;
            let mut h = *h;
            if let Some(ts) = stamp.log_append_time_ms {
                batch::set_log_append_time(one, ts).ok_or(crate::error::BatchError::Truncated)?;
                h.max_timestamp = ts;
            }
            if let Some(epoch) = stamp.leader_epoch {
                batch::set_partition_leader_epoch(one, epoch)
                    .ok_or(crate::error::BatchError::Truncated)?;
                h.partition_leader_epoch = epoch;
            }
            h.base_offset = next;
            next = h.next_offset();
            headers.push((*pos, h));
        }
        self.maybe_roll(bytes.len() as u64, now_ms)?;
        let active_base = self.active()?.base_offset;
        let result = match self.segments.get_mut(&active_base) {
            Some(seg) => seg.append(bytes, &headers),
            None => Err(StorageError::LogOffline(self.dir.clone())),
        };
        if let Err(e) = result {
            // A failed write leaves the file in an unknown state: take the log offline. A full
            // disk was rolled back cleanly and the log stays online.
            if !matches!(e, StorageError::DiskFull(_)) {
                self.offline = true;
            }
            return Err(e);
        }
        self.log_end_offset = next;
        for (pos, h) in &headers {
            self.producers.record(h);
            let marker = if h.is_control() {
                bytes
                    .get(*pos..*pos + h.size_bytes())
                    .and_then(control::marker_of)
            } else {
                None
            };
            if let Some((_, coordinator_epoch)) = marker {
                self.producers
                    .record_marker(h.producer_id, coordinator_epoch);
            }
            self.txns.record(h, marker.map(|(control, _)| control));
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time_ms: stamp.log_append_time_ms,
            duplicate: false,
        })
    }

    /// Checks a marker batch (`batch`, its bytes) against the coordinator epoch of the
    /// producer's last marker here.
    fn check_marker(&self, h: &BatchHeader, batch: Option<&[u8]>) -> Result<(), ProducerError> {
        match batch.and_then(control::marker_of) {
            Some((_, coordinator_epoch)) => self
                .producers
                .check_marker(h.producer_id, coordinator_epoch),
            None => Ok(()),
        }
    }

    /// Checks idempotent producers' sequence numbers (and markers' coordinator epochs). `Some`
    /// when the request is exactly one retried batch already in the log.
    fn check_sequences(
        &self,
        bytes: &[u8],
        batches: &[(usize, BatchHeader)],
    ) -> Result<Option<ProducerBatch>, StorageError> {
        for (pos, h) in batches.iter().filter(|(_, h)| h.is_control()) {
            self.check_marker(h, bytes.get(*pos..*pos + h.size_bytes()))?;
        }
        if let [(_, h)] = batches {
            return match self.producers.check(h)? {
                SequenceCheck::Append => Ok(None),
                SequenceCheck::Duplicate(b) => Ok(Some(b)),
            };
        }
        // Several batches in one request: each must follow the ones before it.
        let mut scratch = self.producers.clone();
        for (_, h) in batches {
            match scratch.check(h)? {
                SequenceCheck::Append => scratch.record(h),
                SequenceCheck::Duplicate(_) => {
                    return Err(ProducerError::DuplicateSequence(h.producer_id).into())
                }
            }
        }
        Ok(None)
    }

    fn maybe_roll(&mut self, incoming_bytes: u64, now_ms: i64) -> Result<(), StorageError> {
        let active = self.active()?;
        let segment_bytes = u64::try_from(self.config.segment_bytes).unwrap_or(u64::MAX);
        let full = active.size_bytes() + incoming_bytes > segment_bytes;
        let old = now_ms.saturating_sub(active.created_ms) >= self.config.segment_ms;
        if active.is_empty() || !(full || old) {
            return Ok(());
        }
        self.roll(now_ms)
    }

    /// Closes the active segment (flushing it and its indexes) and starts a new one at the log end.
    pub fn roll(&mut self, now_ms: i64) -> Result<(), StorageError> {
        self.active()?.sync_all()?;
        let seg = LogSegment::create(self.fs.as_ref(), &self.dir, self.log_end_offset, now_ms)?;
        crate::fsutil::sync_dir(&self.dir)?;
        self.segments.insert(seg.base_offset, seg);
        Ok(())
    }

    /// The file whose fdatasync makes everything appended so far durable.
    pub fn sync_target(&self) -> Result<Option<SyncTarget>, StorageError> {
        if self.high_watermark >= self.log_end_offset {
            return Ok(None);
        }
        let active = self.active()?;
        Ok(Some(SyncTarget {
            file: Arc::clone(active.log_file()),
            path: active.log_path().to_path_buf(),
            upto: self.log_end_offset,
        }))
    }

    /// Records that everything below `upto` is on disk; the high watermark never moves back.
    pub fn mark_flushed(&mut self, upto: Offset) {
        if self.replicated {
            return; // the commit point moves the high watermark
        }
        self.high_watermark = self.high_watermark.max(upto.min(self.log_end_offset));
    }

    /// A failed fsync is never retried: the log stops accepting and acknowledging writes.
    pub fn mark_offline(&mut self) {
        self.offline = true;
    }

    /// Flushes everything including indexes (clean shutdown).
    pub fn flush_all(&mut self) -> Result<(), StorageError> {
        for seg in self.segments.values() {
            seg.sync_all()?;
        }
        self.mark_flushed(self.log_end_offset);
        Ok(())
    }

    /// Locates the data a fetch at `offset` returns: from the start of the batch holding
    /// `offset` to the end of its segment. `None` when `offset` is at the high watermark.
    pub fn read_slice(&self, offset: Offset) -> Result<Option<SegmentSlice>, StorageError> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        if offset >= self.high_watermark {
            return Ok(None);
        }
        for (_, seg) in self
            .segments
            .range(..=offset)
            .rev()
            .chain(self.segments.range(offset + 1..))
        {
            if seg.next_offset <= offset {
                continue;
            }
            if let Some((pos, _)) = seg.find_position(offset)? {
                return Ok(Some(seg.slice(pos)));
            }
        }
        Ok(None)
    }

    /// Offset of the first batch with a timestamp at or after `timestamp`, and that timestamp.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, Offset)>, StorageError> {
        for seg in self.segments.values() {
            if seg.max_timestamp.0 < timestamp {
                continue;
            }
            if let Some((pos, h)) = seg.find_by_timestamp(timestamp)? {
                if h.base_offset >= self.high_watermark {
                    return Ok(None);
                }
                let whole = segment::read_slice(&seg.slice(pos), h.size_bytes() as u64)?;
                let found = batch::first_record_at_or_after(&whole, timestamp)
                    .unwrap_or((h.max_timestamp, h.base_offset));
                return Ok(Some((found.0, found.1.max(self.log_start_offset))));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the offset holding it.
    pub fn max_timestamp(&self) -> Option<(i64, Offset)> {
        self.segments
            .values()
            .filter(|s| !s.is_empty())
            .map(|s| s.max_timestamp)
            .max_by_key(|(ts, _)| *ts)
            .filter(|(_, off)| *off < self.high_watermark)
    }

    /// The record with the largest timestamp (the first one, if several share it): its
    /// timestamp and offset. Batches are read to find the record (uncompressed ones; for a
    /// compressed batch the batch's last offset stands in).
    pub fn max_timestamp_record(&self) -> Result<Option<(i64, Offset)>, StorageError> {
        let Some((ts, last_offset)) = self.max_timestamp() else {
            return Ok(None);
        };
        let Some(slice) = self.read_slice(last_offset)? else {
            return Ok(Some((ts, last_offset)));
        };
        let header = chronik_types::limits::RECORD_BATCH_HEADER_BYTES as u64;
        let head = segment::read_slice(&slice, header)?;
        let Some((_, size)) = batch::peek_size(&head) else {
            return Ok(Some((ts, last_offset)));
        };
        let whole = segment::read_slice(&slice, size as u64)?;
        let compressed = BatchHeader::parse(&whole).is_some_and(|h| h.compression_codec() != 0);
        if compressed {
            return Ok(Some((ts, last_offset)));
        }
        Ok(Some(
            batch::first_record_at_or_after(&whole, ts)
                .filter(|(t, _)| *t == ts)
                .unwrap_or((ts, last_offset)),
        ))
    }

    /// DeleteRecords: moves the log start offset up to `offset` (≤ high watermark) and deletes
    /// whole segments below it. The caller persists the new log start offset.
    pub fn delete_records_before(&mut self, offset: Offset) -> Result<Offset, StorageError> {
        if offset > self.high_watermark || offset < 0 {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.high_watermark,
            });
        }
        // A replicated log keeps the segments: its Raft group may still send those entries to
        // a lagging follower. Only the offsets below the new start are no longer served.
        self.move_log_start(offset, !self.replicated)
    }

    /// Moves the log start offset forward to `offset` and, with `delete_segments`, deletes the
    /// segments entirely below it.
    pub(crate) fn move_log_start(
        &mut self,
        offset: Offset,
        delete_segments: bool,
    ) -> Result<Offset, StorageError> {
        self.log_start_offset = self.log_start_offset.max(offset);
        if delete_segments {
            self.delete_segments_below_start()?;
        } else {
            self.txns.remove_before(self.log_start_offset);
        }
        Ok(self.log_start_offset)
    }

    fn delete_segments_below_start(&mut self) -> Result<usize, StorageError> {
        self.delete_segments_below(self.log_start_offset)
    }

    /// Deletes the closed segments whose batches all lie below `limit` (at most the log start).
    fn delete_segments_below(&mut self, limit: Offset) -> Result<usize, StorageError> {
        self.txns.remove_before(self.log_start_offset);
        let limit = limit.min(self.log_start_offset);
        let doomed: Vec<Offset> = self
            .segments
            .iter()
            .rev()
            .skip(1) // never the active segment
            .filter(|(_, s)| s.next_offset <= limit)
            .map(|(b, _)| *b)
            .collect();
        for base in &doomed {
            if let Some(seg) = self.segments.remove(base) {
                seg.delete()?;
            }
        }
        Ok(doomed.len())
    }

    /// Deletes old segments by `retention.ms` and `retention.bytes`; returns segments removed.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, StorageError> {
        let start = self.retention_start(now_ms);
        self.delete_segments_before(start)
    }

    /// Where the log would start after retention by `retention.ms` and `retention.bytes`: the
    /// end of the last closed segment that has to go (never past the high watermark), or the
    /// current log start when none has to.
    pub fn retention_start(&self, now_ms: i64) -> Offset {
        if !self.config.cleanup_delete {
            return self.log_start_offset; // cleanup.policy=compact alone: nothing goes by time or size
        }
        let mut new_start = self.log_start_offset;
        if self.config.retention_ms >= 0 {
            for seg in self.segments.values().rev().skip(1) {
                if seg.max_timestamp.0 >= 0
                    && now_ms - seg.max_timestamp.0 > self.config.retention_ms
                {
                    new_start = new_start.max(seg.next_offset);
                    break;
                }
            }
        }
        if self.config.retention_bytes >= 0 {
            let mut total = self.size_bytes();
            let limit = u64::try_from(self.config.retention_bytes).unwrap_or(0);
            for seg in self
                .segments
                .values()
                .rev()
                .skip(1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                if total <= limit {
                    break;
                }
                total -= seg.size_bytes();
                new_start = new_start.max(seg.next_offset);
            }
        }
        new_start
            .min(self.high_watermark)
            .max(self.log_start_offset)
    }

    /// Moves the log start offset forward to `offset` (at most the high watermark) and deletes
    /// the closed segments entirely below it, also in a replicated log (whose Raft group no
    /// longer needs those entries: it purged them). Returns the segments removed.
    pub fn delete_segments_before(&mut self, offset: Offset) -> Result<usize, StorageError> {
        self.log_start_offset = self.log_start_offset.max(offset.min(self.high_watermark));
        // Only below `offset`, even where the log start is higher (DeleteRecords in a
        // replicated log): the entries above it are not purged, nor their producer state saved.
        self.delete_segments_below(offset)
    }

    /// What compaction would work on: the closed segments, if any of them is newer than the
    /// last compaction. `None` when the topic is not compacted or nothing changed.
    pub fn compaction_input(&self, now_ms: i64) -> Option<CleanInput> {
        if !self.config.cleanup_compact || self.offline {
            return None;
        }
        let active = self.segments.values().last()?;
        let closed: Vec<&LogSegment> = self
            .segments
            .values()
            .filter(|s| s.base_offset != active.base_offset)
            .collect();
        let closed_end = closed.last().map(|s| s.next_offset)?;
        if closed_end <= self.compacted_upto {
            return None;
        }
        if self.txns.first_unstable_offset().is_some() {
            // An open transaction's records are neither committed nor aborted yet: they cannot
            // be judged as a key's value. Wait until it is decided.
            return None;
        }
        Some(CleanInput {
            dir: self.dir.clone(),
            fs: Arc::clone(&self.fs),
            segments: closed
                .iter()
                .map(|s| (s.base_offset, Arc::clone(s.log_file()), s.size_bytes()))
                .collect(),
            head: (Arc::clone(active.log_file()), active.size_bytes()),
            closed_end,
            delete_retention_ms: self.config.delete_retention_ms,
            now_ms,
            aborted: self
                .txns
                .aborted_between(self.log_start_offset, self.log_end_offset),
        })
    }

    /// Swaps rewritten segments in (see `cleaner` for the crash-safe order). A segment that is
    /// gone or became active since `input` was taken is skipped. Returns segments swapped.
    pub fn install_cleaned(
        &mut self,
        input: &CleanInput,
        cleaned: Vec<CleanedSegment>,
        now_ms: i64,
    ) -> Result<usize, StorageError> {
        let active_base = self.active()?.base_offset;
        let mut swapped = 0;
        for c in cleaned {
            if c.base_offset == active_base || !self.segments.contains_key(&c.base_offset) {
                std::fs::remove_file(&c.cleaned_path).at(&c.cleaned_path)?;
                continue;
            }
            let stem = crate::segment::file_stem(c.base_offset);
            let swap = self.dir.join(format!("{stem}{SWAP_SUFFIX}"));
            std::fs::rename(&c.cleaned_path, &swap).at(&swap)?;
            crate::fsutil::sync_dir(&self.dir)?;
            if let Some(old) = self.segments.remove(&c.base_offset) {
                old.delete()?;
            }
            let log_path = self.dir.join(format!("{stem}{LOG_SUFFIX}"));
            std::fs::rename(&swap, &log_path).at(&log_path)?;
            crate::fsutil::sync_dir(&self.dir)?;
            let (seg, _) =
                LogSegment::open(self.fs.as_ref(), &self.dir, c.base_offset, false, now_ms)?;
            self.segments.insert(c.base_offset, seg);
            tracing::info!(segment = %log_path.display(), before = c.records_before, after = c.records_after, "compacted segment");
            swapped += 1;
        }
        self.compacted_upto = self.compacted_upto.max(input.closed_end);
        Ok(swapped)
    }

    /// Removes the whole log directory (topic deletion).
    pub fn delete_dir(self) -> Result<(), StorageError> {
        std::fs::remove_dir_all(&self.dir).at(&self.dir)
    }
}

/// Trims `data` (read from a `SegmentSlice`) to whole batches below `upper_bound` within
/// `max_bytes`; the first batch is always whole, even if larger (KIP-74). Returns the length.
pub fn whole_batches_len(
    data: &[u8],
    upper_bound: Offset,
    max_bytes: usize,
    min_one: bool,
) -> usize {
    let mut pos = 0usize;
    while let Some(rest) = data.get(pos..) {
        let Some((base, size)) = batch::peek_size(rest) else {
            break;
        };
        let over = pos + size > max_bytes && (pos > 0 || !min_one);
        if base >= upper_bound || size > rest.len() || over {
            break;
        }
        pos += size;
    }
    pos
}

/// Checks the CRC of every batch about to be served. A corrupt batch is never served: the
/// batches before it are, and a read that starts at it is an error naming file and offset.
fn verified_prefix_len(data: &[u8], slice: &SegmentSlice) -> Result<usize, StorageError> {
    let mut pos = 0usize;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        let Some((base, size)) = batch::peek_size(rest) else {
            break;
        };
        let one = rest.get(..size).unwrap_or(rest);
        if let Err(e) = batch::validate(one) {
            tracing::error!(path = %slice.path.display(), position = slice.start + pos as u64,
                base_offset = base, error = %e, "corrupt record batch on read; not served");
            if pos == 0 {
                return Err(StorageError::Corrupt {
                    path: slice.path.clone(),
                    reason: format!(
                        "record batch at offset {base} (position {}): {e}",
                        slice.start
                    ),
                });
            }
            break;
        }
        pos += size;
    }
    Ok(pos)
}

/// Reads the data of a fetch: up to `max_bytes` of whole batches below `upper_bound`, but at
/// least the first whole batch when `min_one`.
pub fn read_batches(
    slice: &SegmentSlice,
    upper_bound: Offset,
    max_bytes: usize,
    min_one: bool,
) -> Result<Vec<u8>, StorageError> {
    let header = chronik_types::limits::RECORD_BATCH_HEADER_BYTES as u64;
    let mut want = if min_one {
        (max_bytes as u64).max(header)
    } else {
        max_bytes as u64
    };
    loop {
        let mut data = segment::read_slice(slice, want)?;
        let first = batch::peek_size(&data).map(|(_, s)| s as u64);
        match first {
            // The first batch is larger than what was read: read exactly it.
            Some(size)
                if min_one
                    && size > data.len() as u64
                    && want < size
                    && size <= slice.end - slice.start =>
            {
                want = size;
                continue;
            }
            _ => {
                let len = whole_batches_len(&data, upper_bound, max_bytes, min_one);
                data.truncate(len);
                let valid = verified_prefix_len(&data, slice)?;
                data.truncate(valid);
                return Ok(data);
            }
        }
    }
}

mod replica;
pub use replica::BatchLocation;

#[cfg(test)]
#[path = "tests/log.rs"]
mod tests;

#[cfg(test)]
#[path = "tests/faults.rs"]
mod fault_tests;

#[cfg(test)]
#[path = "tests/compaction.rs"]
mod compaction_tests;

#[cfg(test)]
#[path = "tests/replica.rs"]
mod replica_tests;

#[cfg(test)]
#[path = "tests/transactions.rs"]
mod transaction_tests;

/// The marker type and coordinator epoch of the batch `h` at `pos` of `seg`, read from the file
/// when `h` is a control batch (rebuilding the transaction state); `None` for other batches.
/// Where the producer state of a log whose segments begin at `first_base` and that ends at
/// `end` starts from: the newest producer-state file within that range (it stands for the
/// batches below it, which may be gone), else nothing (every batch is in the log).
fn base_state(dir: &Path, first_base: Offset, end: Offset) -> Result<StateSnapshot, StorageError> {
    let files = StateSnapshot::list(dir)?;
    match files.iter().rev().find(|o| **o <= end) {
        Some(offset) if *offset >= first_base => StateSnapshot::load(dir, *offset),
        Some(offset) => {
            tracing::error!(dir = %dir.display(), offset, first_base,
                "a producer-state file below the first segment is not used: the state of the \
                 producers of the batches in between is lost");
            Ok(StateSnapshot::empty(first_base))
        }
        None => Ok(StateSnapshot::empty(first_base)),
    }
}

pub(crate) fn control_at(
    seg: &LogSegment,
    pos: u64,
    h: &BatchHeader,
) -> Result<Option<(ControlType, i32)>, StorageError> {
    if !h.is_control() {
        return Ok(None);
    }
    let mut buf = vec![0u8; h.size_bytes()];
    seg.log_file()
        .read_exact_at(&mut buf, pos)
        .at(seg.log_path())?;
    Ok(control::marker_of(&buf))
}
