//! JoinGroup: members (re)join; the join phase ends when everyone is in or the rebalance
//! timeout passes, and every waiting JoinGroup is then answered (see `rebalance`).

use crate::coordinator::{CoordinatorConfig, GroupCoordinator};
use crate::group::{Group, GroupState, Member};
use crate::rebalance::{maybe_complete_join, prepare_rebalance};
use crate::records::GroupRecord;
use crate::types::{error, JoinRequest, JoinResponse, Output, Reply, ReplyTo};
use bytes::Bytes;

fn reply(to: ReplyTo, r: JoinResponse) -> Output {
    Output {
        records: Vec::new(),
        replies: vec![(to, Reply::Join(r))],
    }
}

/// The response for a member that keeps the current generation without a rebalance.
fn current_generation(g: &Group, member_id: &str) -> JoinResponse {
    let protocol = g.protocol_name.clone().unwrap_or_default();
    let leader = g.leader.clone().unwrap_or_default();
    let members = if leader == member_id {
        g.members
            .values()
            .map(|m| {
                (
                    m.member_id.clone(),
                    m.group_instance_id.clone(),
                    m.metadata_for(&protocol),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinResponse {
        error_code: error::NONE,
        generation_id: g.generation_id,
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol_name.clone(),
        leader,
        member_id: member_id.to_string(),
        members,
    }
}

/// Whether the group can take a member with these protocols (Kafka's `supportsProtocols`).
fn supports(g: &Group, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
    if g.members.is_empty() {
        return !protocol_type.is_empty() && !protocols.is_empty();
    }
    if g.protocol_type.as_deref() != Some(protocol_type) {
        return false;
    }
    protocols.iter().any(|(p, _)| {
        g.members
            .values()
            .all(|m| m.protocols.iter().any(|(q, _)| q == p))
    })
}

fn new_member(req: &JoinRequest, member_id: &str, reply_to: ReplyTo, now_ms: i64) -> Member {
    Member {
        member_id: member_id.to_string(),
        group_instance_id: req.group_instance_id.clone(),
        client_id: req.client_id.clone(),
        client_host: req.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        protocol_type: req.protocol_type.clone(),
        protocols: req.protocols.clone(),
        assignment: Bytes::new(),
        awaiting_join: Some(reply_to),
        awaiting_sync: None,
        session_deadline_ms: now_ms + i64::from(req.session_timeout_ms),
    }
}

fn add_member_and_rebalance(
    g: &mut Group,
    m: Member,
    now_ms: i64,
    cfg: &CoordinatorConfig,
) -> Output {
    // Kafka's GroupMetadata.add: the first member sets the protocol type, also for a group
    // that had another one before it emptied.
    if g.members.is_empty() {
        g.protocol_type = Some(m.protocol_type.clone());
    }
    if let Some(iid) = &m.group_instance_id {
        g.static_members.insert(iid.clone(), m.member_id.clone());
    }
    g.members.insert(m.member_id.clone(), m);
    match g.state {
        GroupState::PreparingRebalance => maybe_complete_join(g, now_ms),
        _ => prepare_rebalance(g, now_ms, cfg),
    }
}

impl GroupCoordinator {
    pub fn join(&mut self, req: JoinRequest, reply_to: ReplyTo, now_ms: i64) -> Output {
        let fail = |code| reply(reply_to, JoinResponse::error(code, &req.member_id));
        if req.group_id.is_empty() {
            return fail(error::INVALID_GROUP_ID);
        }
        let cfg = &self.config;
        if req.session_timeout_ms < cfg.min_session_timeout_ms
            || req.session_timeout_ms > cfg.max_session_timeout_ms
        {
            return fail(error::INVALID_SESSION_TIMEOUT);
        }
        if !req.member_id.is_empty() && !self.groups.contains_key(&req.group_id) {
            return fail(error::UNKNOWN_MEMBER_ID);
        }
        let new_id = req
            .member_id
            .is_empty()
            .then(|| self.new_member_id(&req.group_id, &req.client_id, now_ms));
        let cfg = self.config.clone();
        let g = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id, now_ms));
        if g.is(GroupState::Dead) {
            return fail(error::COORDINATOR_NOT_AVAILABLE);
        }
        if !supports(g, &req.protocol_type, &req.protocols) {
            return fail(error::INCONSISTENT_GROUP_PROTOCOL);
        }
        match new_id {
            Some(id) => join_unknown(g, req, id, reply_to, now_ms, &cfg),
            None => join_known(g, req, reply_to, now_ms, &cfg),
        }
    }
}

fn join_unknown(
    g: &mut Group,
    req: JoinRequest,
    new_id: String,
    reply_to: ReplyTo,
    now_ms: i64,
    cfg: &CoordinatorConfig,
) -> Output {
    if let Some(iid) = req.group_instance_id.clone() {
        if let Some(old_id) = g.static_members.get(&iid).cloned() {
            return replace_static_member(g, req, &old_id, new_id, reply_to, now_ms, cfg);
        }
        return add_member_and_rebalance(
            g,
            new_member(&req, &new_id, reply_to, now_ms),
            now_ms,
            cfg,
        );
    }
    if req.require_known_member_id {
        g.pending_members
            .insert(new_id.clone(), now_ms + i64::from(req.session_timeout_ms));
        return reply(
            reply_to,
            JoinResponse::error(error::MEMBER_ID_REQUIRED, &new_id),
        );
    }
    add_member_and_rebalance(g, new_member(&req, &new_id, reply_to, now_ms), now_ms, cfg)
}

/// A static member came back with a new member id (KIP-345): the old id is fenced. In a Stable
/// group whose selected protocol it does not change, it keeps its assignment and no rebalance
/// happens.
fn replace_static_member(
    g: &mut Group,
    req: JoinRequest,
    old_id: &str,
    new_id: String,
    reply_to: ReplyTo,
    now_ms: i64,
    cfg: &CoordinatorConfig,
) -> Output {
    let mut out = Output::default();
    let Some(mut m) = g.members.remove(old_id) else {
        return add_member_and_rebalance(
            g,
            new_member(&req, &new_id, reply_to, now_ms),
            now_ms,
            cfg,
        );
    };
    if let Some(to) = m.awaiting_join.take() {
        out.replies.push((
            to,
            Reply::Join(JoinResponse::error(error::FENCED_INSTANCE_ID, old_id)),
        ));
    }
    if let Some(to) = m.awaiting_sync.take() {
        out.replies.push((
            to,
            Reply::Sync(crate::types::SyncResponse::error(error::FENCED_INSTANCE_ID)),
        ));
    }
    m.member_id = new_id.clone();
    m.client_id = req.client_id.clone();
    m.client_host = req.client_host.clone();
    m.session_timeout_ms = req.session_timeout_ms;
    m.rebalance_timeout_ms = req.rebalance_timeout_ms;
    m.protocols = req.protocols.clone();
    m.session_deadline_ms = now_ms + i64::from(req.session_timeout_ms);
    if g.leader.as_deref() == Some(old_id) {
        g.leader = Some(new_id.clone());
    }
    if let Some(iid) = &req.group_instance_id {
        g.static_members.insert(iid.clone(), new_id.clone());
    }
    g.members.insert(new_id.clone(), m);
    // Kafka's updateStaticMemberAndRebalance: in a Stable group the rejoin rebalances only if
    // it changes the protocol the group would select (not on any change of metadata bytes).
    if g.is(GroupState::Stable) && crate::rebalance::select_protocol(g) == g.protocol_name {
        out.records.push(GroupRecord::Metadata {
            group_id: g.group_id.clone(),
            value: Some(g.metadata_value()),
        });
        out.replies
            .push((reply_to, Reply::Join(current_generation(g, &new_id))));
        return out;
    }
    if let Some(m) = g.members.get_mut(&new_id) {
        m.awaiting_join = Some(reply_to);
    }
    out.merge(match g.state {
        GroupState::PreparingRebalance => maybe_complete_join(g, now_ms),
        _ => prepare_rebalance(g, now_ms, cfg),
    });
    out
}

fn join_known(
    g: &mut Group,
    req: JoinRequest,
    reply_to: ReplyTo,
    now_ms: i64,
    cfg: &CoordinatorConfig,
) -> Output {
    let member_id = req.member_id.clone();
    if g.pending_members.remove(&member_id).is_some() {
        return add_member_and_rebalance(
            g,
            new_member(&req, &member_id, reply_to, now_ms),
            now_ms,
            cfg,
        );
    }
    if g.is_fenced(&member_id, req.group_instance_id.as_deref()) {
        return reply(
            reply_to,
            JoinResponse::error(error::FENCED_INSTANCE_ID, &member_id),
        );
    }
    let is_leader = g.leader.as_deref() == Some(member_id.as_str());
    let state = g.state;
    let Some(m) = g.members.get_mut(&member_id) else {
        return reply(
            reply_to,
            JoinResponse::error(error::UNKNOWN_MEMBER_ID, &member_id),
        );
    };
    let unchanged = m.protocols == req.protocols;
    m.session_deadline_ms = now_ms + i64::from(req.session_timeout_ms);
    m.session_timeout_ms = req.session_timeout_ms;
    m.rebalance_timeout_ms = req.rebalance_timeout_ms;
    match state {
        GroupState::PreparingRebalance => {
            m.protocols = req.protocols;
            let mut out = Output::default();
            if let Some(old) = m.awaiting_join.replace(reply_to) {
                out.replies.push((
                    old,
                    Reply::Join(JoinResponse::error(
                        error::REBALANCE_IN_PROGRESS,
                        &member_id,
                    )),
                ));
            }
            out.merge(maybe_complete_join(g, now_ms));
            out
        }
        GroupState::CompletingRebalance | GroupState::Stable
            if unchanged && !(state == GroupState::Stable && is_leader) =>
        {
            reply(reply_to, current_generation(g, &member_id))
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            m.protocols = req.protocols;
            m.awaiting_join = Some(reply_to);
            prepare_rebalance(g, now_ms, cfg)
        }
        GroupState::Empty | GroupState::Dead => reply(
            reply_to,
            JoinResponse::error(error::UNKNOWN_MEMBER_ID, &member_id),
        ),
    }
}
