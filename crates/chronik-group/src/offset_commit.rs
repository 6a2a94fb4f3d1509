//! OffsetCommit: validates the committer and turns offsets into records. The offsets become
//! visible when the records are durable (`GroupCoordinator::apply_written`).

use crate::coordinator::GroupCoordinator;
use crate::group::GroupState;
use crate::records::GroupRecord;
use crate::types::{error, CommittedOffset, OffsetCommitRequest};

impl GroupCoordinator {
    /// Returns one error code per entry of `req.offsets` and the records to append.
    pub fn commit_offsets(
        &mut self,
        req: &OffsetCommitRequest,
        now_ms: i64,
    ) -> (Vec<i16>, Vec<GroupRecord>) {
        let all = |code: i16| (vec![code; req.offsets.len()], Vec::new());
        if req.group_id.is_empty() {
            return all(error::INVALID_GROUP_ID);
        }
        match self.groups.get_mut(&req.group_id) {
            // Kafka: an unknown group and a generation is "a request coming from an older
            // generation" (e.g. the group expired): ILLEGAL_GENERATION.
            None if req.generation_id >= 0 => return all(error::ILLEGAL_GENERATION),
            None => {}
            Some(g) if req.generation_id < 0 && g.is(GroupState::Empty) => {}
            Some(g) => {
                if g.is(GroupState::Dead) {
                    return all(error::COORDINATOR_NOT_AVAILABLE);
                }
                if g.is_fenced(&req.member_id, req.group_instance_id.as_deref()) {
                    return all(error::FENCED_INSTANCE_ID);
                }
                let generation = g.generation_id;
                let state = g.state;
                let Some(m) = g.members.get_mut(&req.member_id) else {
                    return all(error::UNKNOWN_MEMBER_ID);
                };
                if req.generation_id != generation {
                    return all(error::ILLEGAL_GENERATION);
                }
                if state == GroupState::CompletingRebalance {
                    return all(error::REBALANCE_IN_PROGRESS);
                }
                m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
            }
        }
        self.offset_records(req, now_ms)
    }

    /// One error code per offset (metadata too large) and the records of the others.
    pub(crate) fn offset_records(
        &self,
        req: &OffsetCommitRequest,
        now_ms: i64,
    ) -> (Vec<i16>, Vec<GroupRecord>) {
        let mut codes = Vec::with_capacity(req.offsets.len());
        let mut records = Vec::with_capacity(req.offsets.len());
        for o in &req.offsets {
            if o.metadata.len() > self.config.offset_metadata_max_bytes {
                codes.push(error::OFFSET_METADATA_TOO_LARGE);
                continue;
            }
            codes.push(error::NONE);
            records.push(GroupRecord::Offset {
                group_id: req.group_id.clone(),
                topic: o.topic.clone(),
                partition: o.partition,
                value: Some(CommittedOffset {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.clone(),
                    commit_timestamp_ms: now_ms,
                }),
            });
        }
        (codes, records)
    }
}
