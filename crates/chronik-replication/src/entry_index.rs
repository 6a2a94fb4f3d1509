//! `EntryIndex`: where each Raft entry of a partition lives. Pure (no I/O).
//!
//! One Raft entry is either one record batch in the segment log or one Raft-only entry (a new
//! leader's blank entry, a membership change) kept in the `raft-entries` file, out of the Kafka
//! offset space. Raft indexes are contiguous; Kafka offsets advance only with batches.

use chronik_storage::log::BatchLocation;
use chronik_types::Offset;
use std::collections::VecDeque;

/// Where one entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryLoc {
    /// A record batch at `[base_offset, next_offset)` of the segment log.
    Batch {
        term: u64,
        base_offset: Offset,
        next_offset: Offset,
    },
    /// A Raft-only entry, appended when the log end offset was `offset`.
    RaftOnly { term: u64, offset: Offset },
}

impl EntryLoc {
    pub fn term(&self) -> u64 {
        match self {
            Self::Batch { term, .. } | Self::RaftOnly { term, .. } => *term,
        }
    }
    /// The log end offset just before this entry.
    pub fn start_offset(&self) -> Offset {
        match self {
            Self::Batch { base_offset, .. } => *base_offset,
            Self::RaftOnly { offset, .. } => *offset,
        }
    }
    /// The log end offset just after this entry.
    pub fn end_offset(&self) -> Offset {
        match self {
            Self::Batch { next_offset, .. } => *next_offset,
            Self::RaftOnly { offset, .. } => *offset,
        }
    }
}

/// A Raft-only entry as the index needs it: its Raft index, term and log end offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftOnlyLoc {
    pub index: u64,
    pub term: u64,
    pub offset: Offset,
}

/// What the rebuild found that does not fit: everything from `index` on is to be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inconsistent {
    pub index: u64,
    pub offset: Offset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryIndex {
    /// Raft index of `locs[0]`.
    first: u64,
    /// Log end offset before `locs[0]`.
    start_offset: Offset,
    locs: VecDeque<EntryLoc>,
}

impl EntryIndex {
    pub fn new(first: u64, start_offset: Offset) -> Self {
        Self {
            first,
            start_offset,
            locs: VecDeque::new(),
        }
    }

    /// Rebuilds the index from the stored batches (offset order) and Raft-only entries (index
    /// order). Batches below `start_offset` and Raft-only entries below `first` belong to
    /// purged entries. A Raft-only entry whose stored index disagrees with its place, or that
    /// sits past the last batch, ends the consistent prefix: the rest is reported to be cut.
    pub fn rebuild(
        first: u64,
        start_offset: Offset,
        batches: &[BatchLocation],
        raft_only: &[RaftOnlyLoc],
    ) -> (Self, Option<Inconsistent>) {
        let mut index = Self::new(first, start_offset);
        let mut b = batches
            .iter()
            .filter(|b| b.base_offset >= start_offset)
            .peekable();
        let mut r = raft_only.iter().filter(|r| r.index >= first).peekable();
        loop {
            let next = index.next_index();
            let raft_only_first = match (b.peek(), r.peek()) {
                (None, None) => return (index, None),
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(batch), Some(ro)) => ro.offset <= batch.base_offset,
            };
            if raft_only_first {
                if let Some(ro) = r.next() {
                    if ro.index != next || ro.offset != index.end_offset() {
                        return (
                            index.clone(),
                            Some(Inconsistent {
                                index: next,
                                offset: index.end_offset(),
                            }),
                        );
                    }
                    index.push(EntryLoc::RaftOnly {
                        term: ro.term,
                        offset: ro.offset,
                    });
                }
            } else if let Some(batch) = b.next() {
                if batch.base_offset != index.end_offset() {
                    return (
                        index.clone(),
                        Some(Inconsistent {
                            index: next,
                            offset: index.end_offset(),
                        }),
                    );
                }
                index.push(EntryLoc::Batch {
                    term: u64::try_from(batch.leader_epoch).unwrap_or(0),
                    base_offset: batch.base_offset,
                    next_offset: batch.next_offset,
                });
            }
        }
    }

    pub fn push(&mut self, loc: EntryLoc) {
        self.locs.push_back(loc);
    }

    /// Raft index of the first entry kept (entries before it are purged).
    pub fn first_index(&self) -> u64 {
        self.first
    }

    /// The Raft index the next appended entry gets.
    pub fn next_index(&self) -> u64 {
        self.first + self.locs.len() as u64
    }

    pub fn last(&self) -> Option<(u64, &EntryLoc)> {
        self.locs.back().map(|l| (self.next_index() - 1, l))
    }

    pub fn get(&self, index: u64) -> Option<&EntryLoc> {
        let i = index.checked_sub(self.first)?;
        self.locs.get(usize::try_from(i).ok()?)
    }

    /// The log end offset after the last entry.
    pub fn end_offset(&self) -> Offset {
        self.locs
            .back()
            .map_or(self.start_offset, EntryLoc::end_offset)
    }

    /// The log end offset once every entry up to and including `index` is in: the high
    /// watermark for a commit index of `index`.
    pub fn offset_after(&self, index: u64) -> Offset {
        match self.get(index) {
            Some(loc) => loc.end_offset(),
            None if index >= self.next_index() => self.end_offset(),
            None => self.start_offset,
        }
    }

    /// The Raft index of the last entry ending at or below `offset` (None: no such entry kept).
    pub fn last_ending_at_or_before(&self, offset: Offset) -> Option<u64> {
        let n = self.locs.partition_point(|l| l.end_offset() <= offset);
        (n > 0).then(|| self.first + n as u64 - 1)
    }

    /// Removes entries from `index` on; returns the log end offset the segment log is cut to.
    pub fn truncate(&mut self, index: u64) -> Offset {
        let keep = index.saturating_sub(self.first);
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        if keep < self.locs.len() {
            self.locs.truncate(keep);
        }
        self.end_offset()
    }

    /// Forgets entries up to and including `index` (after a snapshot covers them).
    pub fn purge(&mut self, index: u64) {
        while self.first <= index {
            match self.locs.pop_front() {
                Some(loc) => {
                    self.start_offset = loc.end_offset();
                    self.first += 1;
                }
                None => {
                    self.first = index + 1;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base: Offset, next: Offset, epoch: i32) -> BatchLocation {
        BatchLocation {
            base_offset: base,
            next_offset: next,
            leader_epoch: epoch,
        }
    }
    fn ro(index: u64, term: u64, offset: Offset) -> RaftOnlyLoc {
        RaftOnlyLoc {
            index,
            term,
            offset,
        }
    }

    #[test]
    fn rebuild_interleaves_batches_and_raft_only_entries() {
        // index 0 membership, 1 blank (term 1), 2..3 batches, 4 blank (term 2), 5 batch.
        let batches = [batch(0, 3, 1), batch(3, 4, 1), batch(4, 9, 2)];
        let raft_only = [ro(0, 0, 0), ro(1, 1, 0), ro(4, 2, 4)];
        let (idx, bad) = EntryIndex::rebuild(0, 0, &batches, &raft_only);
        assert_eq!(bad, None);
        assert_eq!(idx.next_index(), 6);
        assert_eq!(
            idx.get(2),
            Some(&EntryLoc::Batch {
                term: 1,
                base_offset: 0,
                next_offset: 3
            })
        );
        assert_eq!(idx.get(4), Some(&EntryLoc::RaftOnly { term: 2, offset: 4 }));
        assert_eq!(idx.offset_after(1), 0);
        assert_eq!(idx.offset_after(3), 4);
        assert_eq!(idx.offset_after(5), 9);
        assert_eq!(idx.end_offset(), 9);
    }

    #[test]
    fn a_raft_only_entry_past_the_last_batch_is_cut() {
        // The batch before the blank entry was lost in a crash: the blank's offset is too high.
        let batches = [batch(0, 3, 1)];
        let raft_only = [ro(0, 1, 0), ro(2, 2, 5)];
        let (idx, bad) = EntryIndex::rebuild(0, 0, &batches, &raft_only);
        assert_eq!(idx.next_index(), 2);
        assert_eq!(
            bad,
            Some(Inconsistent {
                index: 2,
                offset: 3
            })
        );
    }

    #[test]
    fn a_raft_only_entry_whose_index_disagrees_is_cut() {
        let batches = [batch(0, 3, 1), batch(3, 4, 1)];
        let raft_only = [ro(0, 1, 0), ro(2, 1, 3)]; // should be at index 2 only if one batch before
        let (idx, bad) = EntryIndex::rebuild(0, 0, &batches, &raft_only);
        assert_eq!(
            bad, None,
            "index 2 is right: entries 0 (ro), 1 (batch 0..3), 2 (ro)"
        );
        assert_eq!(idx.next_index(), 4);
        let raft_only = [ro(0, 1, 0), ro(3, 1, 3)];
        let (idx, bad) = EntryIndex::rebuild(0, 0, &batches, &raft_only);
        assert_eq!(
            bad,
            Some(Inconsistent {
                index: 2,
                offset: 3
            })
        );
        assert_eq!(idx.next_index(), 2);
    }

    #[test]
    fn truncate_and_purge_keep_offsets_consistent() {
        let batches = [batch(0, 2, 1), batch(2, 5, 1), batch(5, 6, 1)];
        let (mut idx, _) = EntryIndex::rebuild(0, 0, &batches, &[]);
        assert_eq!(idx.truncate(1), 2);
        assert_eq!(idx.next_index(), 1);
        idx.push(EntryLoc::RaftOnly { term: 2, offset: 2 });
        assert_eq!(idx.end_offset(), 2);
        idx.purge(0);
        assert_eq!(idx.first_index(), 1);
        assert_eq!(idx.offset_after(0), 2);
        idx.purge(7);
        assert_eq!(idx.first_index(), 8);
        assert_eq!(idx.next_index(), 8);
        assert_eq!(idx.end_offset(), 2);
    }

    #[test]
    fn the_last_entry_ending_at_or_before_an_offset() {
        // index 0 membership (ends at 0), 1..2 batches 0..3 and 3..4, 3 blank at 4, 4 batch 4..9.
        let batches = [batch(0, 3, 1), batch(3, 4, 1), batch(4, 9, 2)];
        let raft_only = [ro(0, 1, 0), ro(3, 2, 4)];
        let (idx, _) = EntryIndex::rebuild(0, 0, &batches, &raft_only);
        assert_eq!(idx.last_ending_at_or_before(-1), None);
        assert_eq!(idx.last_ending_at_or_before(0), Some(0));
        assert_eq!(idx.last_ending_at_or_before(2), Some(0));
        assert_eq!(idx.last_ending_at_or_before(3), Some(1));
        assert_eq!(
            idx.last_ending_at_or_before(4),
            Some(3),
            "the blank after the batch too"
        );
        assert_eq!(idx.last_ending_at_or_before(8), Some(3));
        assert_eq!(idx.last_ending_at_or_before(100), Some(4));
        let mut purged = idx.clone();
        purged.purge(1);
        assert_eq!(purged.last_ending_at_or_before(3), None);
        assert_eq!(purged.last_ending_at_or_before(4), Some(3));
    }

    #[test]
    fn rebuild_skips_purged_prefix() {
        let batches = [batch(0, 2, 1), batch(2, 5, 1), batch(5, 6, 1)];
        let raft_only = [ro(3, 1, 0)];
        let (idx, bad) = EntryIndex::rebuild(10, 2, &batches, &raft_only);
        assert_eq!(bad, None);
        assert_eq!(idx.first_index(), 10);
        assert_eq!(idx.next_index(), 12);
        assert_eq!(idx.offset_after(11), 6);
    }
}
