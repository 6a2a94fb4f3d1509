//! LeaveGroup: members leave (v3+ several at once, static ones by instance id).

use crate::coordinator::GroupCoordinator;
use crate::rebalance::remove_member;
use crate::types::{error, LeavingMember, Output};

impl GroupCoordinator {
    /// Returns the group-level error, each member's error, and what the removals caused.
    pub fn leave(
        &mut self,
        group_id: &str,
        members: &[LeavingMember],
        now_ms: i64,
    ) -> (i16, Vec<i16>, Output) {
        let cfg = self.config.clone();
        let Some(g) = self.groups.get_mut(group_id) else {
            return (
                error::UNKNOWN_MEMBER_ID,
                vec![error::UNKNOWN_MEMBER_ID; members.len()],
                Output::default(),
            );
        };
        let mut out = Output::default();
        let mut codes = Vec::with_capacity(members.len());
        for lm in members {
            let target = match (&lm.group_instance_id, lm.member_id.as_str()) {
                (Some(iid), id) => match g.static_members.get(iid) {
                    None => Err(error::UNKNOWN_MEMBER_ID),
                    Some(known) if !id.is_empty() && known != id => Err(error::FENCED_INSTANCE_ID),
                    Some(known) => Ok(known.clone()),
                },
                (None, id) if g.members.contains_key(id) => Ok(id.to_string()),
                (None, id) if g.pending_members.remove(id).is_some() => {
                    // Kafka's removePendingMemberAndUpdateGroup: a join phase may be waiting
                    // for this member id.
                    out.merge(crate::rebalance::maybe_complete_join(g, now_ms));
                    codes.push(error::NONE);
                    continue;
                }
                (None, _) => Err(error::UNKNOWN_MEMBER_ID),
            };
            match target {
                Ok(id) => {
                    out.merge(remove_member(g, &id, now_ms, &cfg));
                    codes.push(error::NONE);
                }
                Err(code) => codes.push(code),
            }
        }
        (error::NONE, codes, out)
    }
}
