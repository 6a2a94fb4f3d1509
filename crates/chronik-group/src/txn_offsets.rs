//! Transactional offset commits (TxnOffsetCommit, KIP-98): offsets a transactional producer
//! commits for a group stay pending until its transaction's marker reaches the group's
//! `__consumer_offsets` partition. A COMMIT marker makes them the group's committed offsets,
//! an ABORT marker drops them. OffsetFetch with `require_stable` (KIP-447) answers
//! UNSTABLE_OFFSET_COMMIT for a partition that has pending offsets.

use crate::coordinator::GroupCoordinator;
use crate::group::GroupState;
use crate::records::GroupRecord;
use crate::types::{error, OffsetCommitRequest};

impl GroupCoordinator {
    /// Validates a TxnOffsetCommit and returns one error code per offset and the records to
    /// store in the producer's transaction. With a member id, generation or instance id
    /// (KIP-447) they must be current, as for OffsetCommit; without them (clients before
    /// KIP-447, or a producer outside the group) any group that is not Dead is accepted, as
    /// Kafka's transactional offset commit does.
    pub fn txn_commit_offsets(
        &mut self,
        req: &OffsetCommitRequest,
        now_ms: i64,
    ) -> (Vec<i16>, Vec<GroupRecord>) {
        let unfenced =
            req.generation_id < 0 && req.member_id.is_empty() && req.group_instance_id.is_none();
        if !unfenced {
            return self.commit_offsets(req, now_ms);
        }
        let all = |code: i16| (vec![code; req.offsets.len()], Vec::new());
        if req.group_id.is_empty() {
            return all(error::INVALID_GROUP_ID);
        }
        if self
            .groups
            .get(&req.group_id)
            .is_some_and(|g| g.is(GroupState::Dead))
        {
            return all(error::COORDINATOR_NOT_AVAILABLE);
        }
        self.offset_records(req, now_ms)
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

    /// `producer_id`'s transaction ended with a marker in the `__consumer_offsets` partition
    /// whose groups `in_partition` selects: commit or drop its offsets of those groups only
    /// (its offsets in other partitions wait for their own marker).
    pub fn complete_txn_offsets(
        &mut self,
        producer_id: i64,
        commit: bool,
        in_partition: impl Fn(&str) -> bool,
        now_ms: i64,
    ) {
        let Some(pending) = self.pending_txn_offsets.remove(&producer_id) else {
            return;
        };
        let (done, waiting): (Vec<GroupRecord>, Vec<GroupRecord>) = pending
            .into_iter()
            .partition(|r| in_partition(r.group_id()));
        if !waiting.is_empty() {
            self.pending_txn_offsets.insert(producer_id, waiting);
        }
        if commit {
            for r in &done {
                self.replay(r, now_ms);
            }
        }
    }

    /// Whether an open transaction has offsets pending for a group `in_partition` selects.
    pub fn has_pending_txn_offsets(&self, in_partition: impl Fn(&str) -> bool) -> bool {
        self.pending_txn_offsets
            .values()
            .flatten()
            .any(|r| in_partition(r.group_id()))
    }

    /// Whether an open transaction has committed an offset for this partition of `group_id`.
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn_offsets.values().flatten().any(|r| {
            matches!(r, GroupRecord::Offset { group_id: g, topic: t, partition: p, .. }
                if g == group_id && t == topic && *p == partition)
        })
    }
}
