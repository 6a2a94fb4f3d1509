//! Rebalance steps shared by the operations: preparing a rebalance, ending the join phase,
//! choosing the protocol, removing members.

use crate::coordinator::CoordinatorConfig;
use crate::group::{Group, GroupState};
use crate::records::GroupRecord;
use crate::types::{error, JoinResponse, Output, Reply, SyncResponse};
use bytes::Bytes;

/// Starts (or restarts) the join phase. Pending SyncGroups of an interrupted
/// CompletingRebalance are answered with REBALANCE_IN_PROGRESS.
pub fn prepare_rebalance(g: &mut Group, now_ms: i64, cfg: &CoordinatorConfig) -> Output {
    let mut out = Output::default();
    if g.is(GroupState::CompletingRebalance) {
        for m in g.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(to) = m.awaiting_sync.take() {
                out.replies.push((
                    to,
                    Reply::Sync(SyncResponse::error(error::REBALANCE_IN_PROGRESS)),
                ));
            }
        }
    }
    if g.is(GroupState::Empty) {
        g.initial_delay_deadline_ms = Some(now_ms + i64::from(cfg.initial_rebalance_delay_ms));
    }
    g.rebalance_deadline_ms = Some(now_ms + i64::from(g.max_rebalance_timeout_ms()));
    g.transition(GroupState::PreparingRebalance, now_ms);
    out.merge(maybe_complete_join(g, now_ms));
    out
}

/// Ends the join phase if every member has rejoined, no new member id is outstanding and the
/// initial delay has passed.
pub fn maybe_complete_join(g: &mut Group, now_ms: i64) -> Output {
    if !g.is(GroupState::PreparingRebalance) {
        return Output::default();
    }
    let all_joined =
        g.members.values().all(|m| m.awaiting_join.is_some()) && g.pending_members.is_empty();
    let delay_over = g.initial_delay_deadline_ms.is_none_or(|d| d <= now_ms);
    if all_joined && delay_over {
        complete_join(g, now_ms)
    } else {
        Output::default()
    }
}

/// Ends the join phase: members that did not rejoin are removed, the generation advances, a
/// protocol is chosen and every waiting JoinGroup is answered (the leader gets the members).
pub fn complete_join(g: &mut Group, now_ms: i64) -> Output {
    let mut out = Output::default();
    let missing: Vec<String> = g
        .members
        .values()
        .filter(|m| m.awaiting_join.is_none())
        .map(|m| m.member_id.clone())
        .collect();
    for id in missing {
        drop_member(g, &id);
    }
    g.rebalance_deadline_ms = None;
    g.initial_delay_deadline_ms = None;
    g.generation_id += 1;
    if g.members.is_empty() {
        g.protocol_name = None;
        g.leader = None;
        g.transition(GroupState::Empty, now_ms);
        out.records.push(GroupRecord::Metadata {
            group_id: g.group_id.clone(),
            value: Some(g.metadata_value()),
        });
        return out;
    }
    g.protocol_name = select_protocol(g);
    if g.leader.as_ref().is_none_or(|l| !g.members.contains_key(l)) {
        g.leader = g.members.keys().next().cloned();
    }
    g.transition(GroupState::CompletingRebalance, now_ms);
    let protocol = g.protocol_name.clone().unwrap_or_default();
    let leader = g.leader.clone().unwrap_or_default();
    let everyone: Vec<(String, Option<String>, Bytes)> = g
        .members
        .values()
        .map(|m| {
            (
                m.member_id.clone(),
                m.group_instance_id.clone(),
                m.metadata_for(&protocol),
            )
        })
        .collect();
    for m in g.members.values_mut() {
        let Some(to) = m.awaiting_join.take() else {
            continue;
        };
        m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
        let response = JoinResponse {
            error_code: error::NONE,
            generation_id: g.generation_id,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            leader: leader.clone(),
            member_id: m.member_id.clone(),
            members: if m.member_id == leader {
                everyone.clone()
            } else {
                Vec::new()
            },
        };
        out.replies.push((to, Reply::Join(response)));
    }
    out
}

/// Kafka's choice: among protocols every member supports, the one most members prefer.
pub fn select_protocol(g: &Group) -> Option<String> {
    let first = g.members.values().next()?;
    let candidates: Vec<&String> = first
        .protocols
        .iter()
        .map(|(n, _)| n)
        .filter(|n| {
            g.members
                .values()
                .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
        })
        .collect();
    let mut best: Option<(&String, usize)> = None;
    for c in &candidates {
        let votes = g
            .members
            .values()
            .filter(|m| {
                m.protocols
                    .iter()
                    .map(|(n, _)| n)
                    .find(|n| candidates.contains(n))
                    == Some(*c)
            })
            .count();
        if best.is_none_or(|(_, v)| votes > v) {
            best = Some((c, votes));
        }
    }
    best.map(|(c, _)| c.clone())
}

/// Removes a member without any follow-up.
pub fn drop_member(g: &mut Group, member_id: &str) -> Option<crate::group::Member> {
    let m = g.members.remove(member_id)?;
    if let Some(iid) = &m.group_instance_id {
        if g.static_members.get(iid).is_some_and(|id| id == member_id) {
            g.static_members.remove(iid);
        }
    }
    Some(m)
}

/// Removes a member (left, expired or fenced) and rebalances what remains. A waiting request of
/// the removed member is answered with UNKNOWN_MEMBER_ID.
pub fn remove_member(
    g: &mut Group,
    member_id: &str,
    now_ms: i64,
    cfg: &CoordinatorConfig,
) -> Output {
    let mut out = Output::default();
    let Some(m) = drop_member(g, member_id) else {
        return out;
    };
    if let Some(to) = m.awaiting_join {
        out.replies.push((
            to,
            Reply::Join(JoinResponse::error(error::UNKNOWN_MEMBER_ID, member_id)),
        ));
    }
    if let Some(to) = m.awaiting_sync {
        out.replies.push((
            to,
            Reply::Sync(SyncResponse::error(error::UNKNOWN_MEMBER_ID)),
        ));
    }
    match g.state {
        GroupState::Stable | GroupState::CompletingRebalance => {
            out.merge(prepare_rebalance(g, now_ms, cfg))
        }
        GroupState::PreparingRebalance => out.merge(maybe_complete_join(g, now_ms)),
        GroupState::Empty | GroupState::Dead => {}
    }
    out
}
