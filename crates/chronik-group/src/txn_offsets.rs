//! Transactional offset commits (TxnOffsetCommit, KIP-98): offsets a transactional producer
//! commits for a group stay pending until its transaction's marker reaches the group's
//! `__consumer_offsets` partition. A COMMIT marker makes them the group's committed offsets,
//! an ABORT marker drops them. OffsetFetch with `require_stable` (KIP-447) answers
//! UNSTABLE_OFFSET_COMMIT for a partition that has pending offsets.

use crate::coordinator::GroupCoordinator;
use crate::records::GroupRecord;
use crate::types::OffsetCommitRequest;

impl GroupCoordinator {
    /// Validates a TxnOffsetCommit as an OffsetCommit (the member and generation, when given,
    /// must be current; without them any group is accepted) and returns one error code per
    /// offset and the records to store in the producer's transaction.
    pub fn txn_commit_offsets(
        &mut self,
        req: &OffsetCommitRequest,
        now_ms: i64,
    ) -> (Vec<i16>, Vec<GroupRecord>) {
        self.commit_offsets(req, now_ms)
    }

    /// Records stored in `producer_id`'s open transaction (when written, or while loading).
    pub fn add_pending_txn_offsets(&mut self, producer_id: i64, records: &[GroupRecord]) {
        if records.is_empty() {
            return;
        }
        self.pending_txn_offsets
            .entry(producer_id)
            .or_default()
            .extend(records.iter().cloned());
    }

    /// `producer_id`'s transaction ended (its marker is stored): commit or drop its offsets.
    pub fn complete_txn_offsets(&mut self, producer_id: i64, commit: bool, now_ms: i64) {
        let Some(records) = self.pending_txn_offsets.remove(&producer_id) else {
            return;
        };
        if commit {
            for r in &records {
                self.replay(r, now_ms);
            }
        }
    }

    /// Whether an open transaction has committed an offset for this partition of `group_id`.
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn_offsets.values().flatten().any(|r| {
            matches!(r, GroupRecord::Offset { group_id: g, topic: t, partition: p, .. }
                if g == group_id && t == topic && *p == partition)
        })
    }
}
