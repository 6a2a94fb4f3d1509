//! What a replicated (Raft) partition needs from its log beyond the single-node path: entries
//! appended with the leader epoch that wrote them, reads above the high watermark (a leader
//! sends followers what is not committed yet), a high watermark set by the commit point,
//! truncation of an uncommitted suffix, and the walk of batch headers that rebuilds the Raft
//! entry index at start-up.

use super::{PartitionLog, Stamp};
use crate::batch::{self, BatchHeader};
use crate::error::{IoContext, StorageError};
use crate::segment::LogSegment;
use crate::state_snapshot::StateSnapshot;
use crate::AppendInfo;
use chronik_types::Offset;
use std::sync::Arc;

/// One stored batch, as the Raft entry index sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLocation {
    pub base_offset: Offset,
    pub next_offset: Offset,
    pub leader_epoch: i32,
}

impl From<&BatchHeader> for BatchLocation {
    fn from(h: &BatchHeader) -> Self {
        Self {
            base_offset: h.base_offset,
            next_offset: h.next_offset(),
            leader_epoch: h.partition_leader_epoch,
        }
    }
}

impl PartitionLog {
    /// Switches the log to replicated mode: from now on the high watermark is what the
    /// replication layer says is committed (`committed_end`, clamped to the log), never the
    /// flushed end.
    pub fn set_replicated(&mut self, committed_end: Offset) {
        self.replicated = true;
        self.high_watermark = committed_end.clamp(self.log_start_offset, self.log_end_offset);
    }

    pub fn is_replicated(&self) -> bool {
        self.replicated
    }

    /// Moves the high watermark up to `offset` (the commit point); it never moves back.
    pub fn advance_high_watermark(&mut self, offset: Offset) {
        self.high_watermark = self.high_watermark.max(offset.min(self.log_end_offset));
    }

    /// Appends the batches of one replicated entry at the log end, stamping each with
    /// `leader_epoch` (the Raft term). Every replica appends the same entries in the same order,
    /// so the offsets assigned here are the same on every replica. Batches are CRC-checked
    /// again: a follower never stores what arrived damaged.
    pub fn append_entry(
        &mut self,
        bytes: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        if self.offline {
            return Err(StorageError::LogOffline(self.dir.clone()));
        }
        let batches = batch::split_and_validate(bytes)?;
        let stamp = Stamp {
            log_append_time_ms: None,
            leader_epoch: Some(leader_epoch),
        };
        self.write_at_end(bytes, &batches, stamp, now_ms)
    }

    /// How an idempotent producer's batch fits the producer state of everything appended so
    /// far: new, a retry of a batch still remembered, or out of order / fenced. Replicas hold
    /// the same batches in the same order, so every replica decides alike.
    /// `batch` is the batch's bytes (a marker's coordinator epoch is in its record).
    pub fn check_producer(
        &self,
        h: &BatchHeader,
        batch: &[u8],
    ) -> Result<crate::producer_state::SequenceCheck, crate::producer_state::ProducerError> {
        if h.is_control() {
            self.check_marker(h, Some(batch))?;
        }
        self.producers.check(h)
    }

    /// Every stored batch in offset order (headers only), for rebuilding the entry index.
    pub fn batch_locations(&self) -> Result<Vec<BatchLocation>, StorageError> {
        let mut out = Vec::new();
        for seg in self.segments.values() {
            let mut pos = 0u64;
            while pos < seg.size_bytes() {
                let h = seg.header_at(pos)?;
                out.push(BatchLocation::from(&h));
                pos += h.size_bytes() as u64;
            }
        }
        Ok(out)
    }

    /// The whole batch whose base offset is `base_offset`, above the high watermark too.
    /// A batch that fails its CRC is an error, never returned.
    pub fn read_batch_at(&self, base_offset: Offset) -> Result<Vec<u8>, StorageError> {
        let not_found = || StorageError::Corrupt {
            path: self.dir.clone(),
            reason: format!("no record batch starts at offset {base_offset}"),
        };
        let (_, seg) = self
            .segments
            .range(..=base_offset)
            .next_back()
            .ok_or_else(not_found)?;
        let (pos, h) = seg.find_position(base_offset)?.ok_or_else(not_found)?;
        if h.base_offset != base_offset {
            return Err(not_found());
        }
        let mut buf = vec![0u8; h.size_bytes()];
        seg.log_file()
            .read_exact_at(&mut buf, pos)
            .at(seg.log_path())?;
        batch::validate(&buf).map_err(|e| StorageError::Corrupt {
            path: seg.log_path().to_path_buf(),
            reason: format!("record batch at offset {base_offset}: {e}"),
        })?;
        Ok(buf)
    }

    /// Removes every batch at and after `offset`, which must be a batch boundary above the high
    /// watermark (a committed record is never taken back). Durable when it returns.
    pub fn truncate_to(&mut self, offset: Offset, now_ms: i64) -> Result<(), StorageError> {
        if offset >= self.log_end_offset {
            return Ok(());
        }
        if offset < self.high_watermark || offset < self.log_start_offset {
            return Err(StorageError::Corrupt {
                path: self.dir.clone(),
                reason: format!(
                    "refusing to truncate to offset {offset}: below the high watermark {} or the log start {}",
                    self.high_watermark, self.log_start_offset
                ),
            });
        }
        // The offset must start a batch (or end the log): checked before anything is deleted.
        if let Some((_, seg)) = self.segments.range(..=offset).next_back() {
            if offset > seg.base_offset {
                if let Some((_, h)) = seg.find_position(offset)? {
                    if h.base_offset != offset {
                        return Err(StorageError::Corrupt {
                            path: self.dir.clone(),
                            reason: format!("offset {offset} is inside a record batch"),
                        });
                    }
                }
            }
        }
        let first_base = self.segments.keys().next().copied().unwrap_or(0);
        let doomed: Vec<Offset> = self
            .segments
            .range(offset..)
            .map(|(b, _)| *b)
            .filter(|b| *b > first_base)
            .collect();
        for base in doomed {
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete()?;
            }
        }
        let last_base = self.active()?.base_offset;
        if let Some(seg) = self.segments.remove(&last_base) {
            let cut = if offset <= seg.base_offset {
                Some(0)
            } else {
                match seg.find_position(offset)? {
                    Some((pos, h)) if h.base_offset == offset => Some(pos),
                    Some(_) => {
                        self.segments.insert(last_base, seg);
                        return Err(StorageError::Corrupt {
                            path: self.dir.clone(),
                            reason: format!("offset {offset} is inside a record batch"),
                        });
                    }
                    None => None,
                }
            };
            if let Some(pos) = cut {
                seg.log_file().set_len(pos).at(seg.log_path())?;
                seg.sync()?;
            }
            drop(seg);
            let (seg, _) = LogSegment::open(self.fs.as_ref(), &self.dir, last_base, true, now_ms)?;
            seg.sync_all()?;
            self.segments.insert(last_base, seg);
        }
        crate::fsutil::sync_dir(&self.dir)?;
        self.log_end_offset = self
            .segments
            .values()
            .last()
            .map_or(offset, |s| s.next_offset);
        self.compacted_upto = self.compacted_upto.min(offset);
        let state = self.state_at(self.log_end_offset)?;
        self.producers = state.producers;
        self.txns = state.txns;
        Ok(())
    }

    /// The producer and transaction state of every batch below `offset` (a batch boundary at
    /// most the log end): the newest producer-state file at or below it, plus the batches from
    /// there on (all of them when there is no such file).
    pub fn state_at(&self, offset: Offset) -> Result<StateSnapshot, StorageError> {
        let first_base = self.segments.keys().next().copied().unwrap_or(0);
        let mut state = super::base_state(&self.dir, first_base, offset)?;
        for seg in self.segments.values() {
            if seg.next_offset <= state.offset {
                continue;
            }
            // From the batch at the state's offset (found through the offset index).
            let mut pos = match seg.find_position(state.offset)? {
                Some((pos, h)) if h.base_offset >= state.offset => pos,
                _ => 0,
            };
            while pos < seg.size_bytes() {
                let h = seg.header_at(pos)?;
                if h.base_offset >= offset {
                    return Ok(state);
                }
                if h.base_offset >= state.offset {
                    state.record(&h, super::control_at(seg, pos, &h)?);
                }
                pos += h.size_bytes() as u64;
            }
        }
        Ok(state)
    }

    /// Writes the producer-state file of `offset` (`state_at`), durably, and removes the older
    /// ones: from now on the batches below `offset` may be deleted.
    pub fn store_state_at(&self, offset: Offset) -> Result<(), StorageError> {
        let state = self.state_at(offset)?;
        state.store(&self.dir)?;
        StateSnapshot::remove_where(&self.dir, |o| o < offset)
    }

    /// Removes the producer-state files above the log end (written by a snapshot install that
    /// a crash cut short before it was recorded).
    pub fn remove_state_files_above_end(&self) -> Result<(), StorageError> {
        let end = self.log_end_offset;
        StateSnapshot::remove_where(&self.dir, |o| o > end)
    }

    /// Replaces the whole log with an empty one starting at `offset` (a replica installing a
    /// snapshot whose entries it does not have, as a Kafka follower starts over at the
    /// leader's log start). Durable when it returns.
    /// The producer and transaction state start as `state` (the state as of `offset`, from
    /// the snapshot installed; its file must be stored before the reset, so that a restart
    /// finds it) or empty.
    pub fn reset_to(
        &mut self,
        offset: Offset,
        state: Option<StateSnapshot>,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        for (_, seg) in std::mem::take(&mut self.segments) {
            seg.delete()?;
        }
        let seg = LogSegment::create(self.fs.as_ref(), &self.dir, offset, now_ms)?;
        crate::fsutil::sync_dir(&self.dir)?;
        self.segments.insert(offset, seg);
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.high_watermark = offset;
        self.compacted_upto = offset;
        let state = state
            .filter(|s| s.offset == offset)
            .unwrap_or_else(|| StateSnapshot::empty(offset));
        self.producers = state.producers;
        self.txns = state.txns;
        StateSnapshot::remove_where(&self.dir, |o| o != offset)?;
        Ok(())
    }

    /// Flushes the active segment's data (fdatasync): everything appended so far is durable
    /// once it returns (a roll already flushed the segments before it).
    pub fn sync_active(&self) -> Result<(), StorageError> {
        self.active()?.sync()
    }

    /// The active segment's file, to fdatasync outside the log lock.
    pub fn active_file(
        &self,
    ) -> Result<(Arc<dyn crate::fs::LogFile>, std::path::PathBuf), StorageError> {
        let seg = self.active()?;
        Ok((Arc::clone(seg.log_file()), seg.log_path().to_path_buf()))
    }
}
