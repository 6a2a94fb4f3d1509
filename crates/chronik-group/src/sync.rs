//! SyncGroup: the leader hands in the assignment; every member gets its part.

use crate::coordinator::GroupCoordinator;
use crate::group::GroupState;
use crate::records::GroupRecord;
use crate::types::{error, Output, Reply, ReplyTo, SyncRequest, SyncResponse};
use bytes::Bytes;

impl GroupCoordinator {
    pub fn sync(&mut self, req: SyncRequest, reply_to: ReplyTo, now_ms: i64) -> Output {
        let fail = |code| Output {
            records: Vec::new(),
            replies: vec![(reply_to, Reply::Sync(SyncResponse::error(code)))],
        };
        let Some(g) = self.groups.get_mut(&req.group_id) else {
            return fail(error::UNKNOWN_MEMBER_ID);
        };
        if g.is_fenced(&req.member_id, req.group_instance_id.as_deref()) {
            return fail(error::FENCED_INSTANCE_ID);
        }
        if !g.members.contains_key(&req.member_id) {
            return fail(error::UNKNOWN_MEMBER_ID);
        }
        if req.generation_id != g.generation_id {
            return fail(error::ILLEGAL_GENERATION);
        }
        let type_mismatch = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != g.protocol_type.as_ref());
        let name_mismatch = req
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != g.protocol_name.as_ref());
        if type_mismatch || name_mismatch {
            return fail(error::INCONSISTENT_GROUP_PROTOCOL);
        }
        let ok = |assignment: Bytes, g: &crate::group::Group| SyncResponse {
            error_code: error::NONE,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            assignment,
        };
        match g.state {
            GroupState::PreparingRebalance => fail(error::REBALANCE_IN_PROGRESS),
            GroupState::Empty | GroupState::Dead => fail(error::UNKNOWN_MEMBER_ID),
            GroupState::Stable => {
                let assignment = g
                    .members
                    .get(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                if let Some(m) = g.members.get_mut(&req.member_id) {
                    m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
                }
                Output {
                    records: Vec::new(),
                    replies: vec![(reply_to, Reply::Sync(ok(assignment, g)))],
                }
            }
            GroupState::CompletingRebalance => {
                if let Some(m) = g.members.get_mut(&req.member_id) {
                    m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
                    m.awaiting_sync = Some(reply_to);
                }
                if g.leader.as_deref() != Some(req.member_id.as_str()) {
                    return Output::default();
                }
                for m in g.members.values_mut() {
                    m.assignment = req
                        .assignments
                        .iter()
                        .find(|(id, _)| *id == m.member_id)
                        .map(|(_, a)| a.clone())
                        .unwrap_or_default();
                }
                g.transition(GroupState::Stable, now_ms);
                let mut out = Output {
                    records: vec![GroupRecord::Metadata {
                        group_id: g.group_id.clone(),
                        value: Some(g.metadata_value()),
                    }],
                    replies: Vec::new(),
                };
                let answers: Vec<(ReplyTo, Bytes)> = g
                    .members
                    .values_mut()
                    .filter_map(|m| m.awaiting_sync.take().map(|to| (to, m.assignment.clone())))
                    .collect();
                for (to, assignment) in answers {
                    out.replies.push((to, Reply::Sync(ok(assignment, g))));
                }
                out
            }
        }
    }
}
