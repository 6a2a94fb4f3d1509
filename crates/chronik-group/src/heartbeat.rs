//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use crate::coordinator::GroupCoordinator;
use crate::group::GroupState;
use crate::types::error;

impl GroupCoordinator {
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
    ) -> i16 {
        let Some(g) = self.groups.get_mut(group_id) else {
            return error::UNKNOWN_MEMBER_ID;
        };
        if g.is_fenced(member_id, instance_id) {
            return error::FENCED_INSTANCE_ID;
        }
        let state = g.state;
        let generation = g.generation_id;
        let Some(m) = g.members.get_mut(member_id) else {
            return error::UNKNOWN_MEMBER_ID;
        };
        if generation_id != generation {
            return error::ILLEGAL_GENERATION;
        }
        m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
        match state {
            GroupState::PreparingRebalance => error::REBALANCE_IN_PROGRESS,
            GroupState::CompletingRebalance | GroupState::Stable => error::NONE,
            GroupState::Empty | GroupState::Dead => error::UNKNOWN_MEMBER_ID,
        }
    }
}
