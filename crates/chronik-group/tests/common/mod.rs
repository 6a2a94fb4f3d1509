//! Shared helpers for the coordinator tests: request builders, reply extraction and a driver
//! that forms a Stable group with a full join + sync round. Time is always injected: tests
//! pass fixed `now` values, nothing reads a clock and nothing is random.

#![allow(dead_code)]

use bytes::Bytes;
use chronik_group::{
    error, CommittedOffset, CoordinatorConfig, GroupCoordinator, GroupRecord, GroupState,
    JoinRequest, JoinResponse, LeavingMember, OffsetCommitEntry, OffsetCommitRequest, Output,
    Reply, ReplyTo, SyncRequest, SyncResponse,
};
use std::collections::BTreeMap;

pub const GROUP: &str = "group-1";
pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 30_000;
/// `group.initial.rebalance.delay.ms` of `coordinator()` (Kafka's default).
pub const DELAY_MS: i32 = 3_000;
/// `offsets.retention.minutes` of every coordinator here (Kafka's default, 7 days).
pub const RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// An arbitrary start time; tests add to it.
pub const T0: i64 = 1_700_000_000_000;

/// Reply tokens the driver uses; tests use small numbers for their own requests.
const DRIVER_JOIN_TOKEN: ReplyTo = 1_000_000;
const DRIVER_SYNC_TOKEN: ReplyTo = 2_000_000;

pub fn config(initial_rebalance_delay_ms: i32) -> CoordinatorConfig {
    CoordinatorConfig {
        initial_rebalance_delay_ms,
        offsets_retention_ms: RETENTION_MS,
        member_id_seed: "seed".into(),
        ..CoordinatorConfig::default()
    }
}

/// A coordinator with Kafka's defaults (initial rebalance delay 3 s).
pub fn coordinator() -> GroupCoordinator {
    GroupCoordinator::new(config(DELAY_MS))
}

/// A coordinator whose first join phase ends as soon as everyone is in.
pub fn coordinator_without_delay() -> GroupCoordinator {
    GroupCoordinator::new(config(0))
}

/// Protocols in preference order; each one's metadata is `meta-<name>`.
pub fn protocols(names: &[&str]) -> Vec<(String, Bytes)> {
    names
        .iter()
        .map(|n| ((*n).to_string(), Bytes::from(format!("meta-{n}"))))
        .collect()
}

/// A JoinGroup for `GROUP` (v3 style: no known member id required) with protocols
/// `[range, roundrobin]`. Adjust it with the `JoinExt` builder methods.
pub fn join_req(member_id: &str) -> JoinRequest {
    JoinRequest {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".into(),
        protocols: protocols(&["range", "roundrobin"]),
        require_known_member_id: false,
    }
}

/// Builder methods for `JoinRequest`.
pub trait JoinExt: Sized {
    fn group(self, group_id: &str) -> Self;
    fn client(self, client_id: &str) -> Self;
    fn instance(self, group_instance_id: &str) -> Self;
    /// JoinGroup v4+: a new member must first get its id (KIP-394).
    fn v4(self) -> Self;
    fn protocol_type(self, protocol_type: &str) -> Self;
    fn protocols(self, names: &[&str]) -> Self;
    /// Protocols with explicit metadata: `(name, metadata)`.
    fn protocols_with(self, list: &[(&str, &str)]) -> Self;
    fn session(self, ms: i32) -> Self;
    fn rebalance(self, ms: i32) -> Self;
}

impl JoinExt for JoinRequest {
    fn group(mut self, group_id: &str) -> Self {
        self.group_id = group_id.into();
        self
    }
    fn client(mut self, client_id: &str) -> Self {
        self.client_id = client_id.into();
        self
    }
    fn instance(mut self, group_instance_id: &str) -> Self {
        self.group_instance_id = Some(group_instance_id.into());
        self
    }
    fn v4(mut self) -> Self {
        self.require_known_member_id = true;
        self
    }
    fn protocol_type(mut self, protocol_type: &str) -> Self {
        self.protocol_type = protocol_type.into();
        self
    }
    fn protocols(mut self, names: &[&str]) -> Self {
        self.protocols = protocols(names);
        self
    }
    fn protocols_with(mut self, list: &[(&str, &str)]) -> Self {
        self.protocols = list
            .iter()
            .map(|(n, m)| ((*n).to_string(), Bytes::from((*m).to_string())))
            .collect();
        self
    }
    fn session(mut self, ms: i32) -> Self {
        self.session_timeout_ms = ms;
        self
    }
    fn rebalance(mut self, ms: i32) -> Self {
        self.rebalance_timeout_ms = ms;
        self
    }
}

pub fn sync_req(
    member_id: &str,
    generation_id: i32,
    assignments: Vec<(String, Bytes)>,
) -> SyncRequest {
    SyncRequest {
        group_id: GROUP.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments,
    }
}

/// The assignment the driver's leader hands each member.
pub fn assignment_for(member_id: &str) -> Bytes {
    Bytes::from(format!("assignment-of-{member_id}"))
}

pub fn offset(topic: &str, partition: i32, offset: i64, metadata: &str) -> OffsetCommitEntry {
    OffsetCommitEntry {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch: 7,
        metadata: metadata.into(),
    }
}

pub fn commit_req(
    member_id: &str,
    generation_id: i32,
    offsets: Vec<OffsetCommitEntry>,
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: GROUP.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        offsets,
    }
}

/// A commit from a consumer that does not use group management (generation -1, no member id).
pub fn standalone_commit(offsets: Vec<OffsetCommitEntry>) -> OffsetCommitRequest {
    commit_req("", -1, offsets)
}

/// Commits and makes the records durable (`apply_written`), asserting every partition succeeded.
pub fn commit_durably(
    c: &mut GroupCoordinator,
    req: &OffsetCommitRequest,
    now: i64,
) -> Vec<GroupRecord> {
    let (codes, records) = c.commit_offsets(req, now);
    assert!(
        codes.iter().all(|&e| e == error::NONE),
        "commit failed: {codes:?}"
    );
    c.apply_written(&records, now);
    records
}

pub fn fetch_one(
    c: &GroupCoordinator,
    group_id: &str,
    topic: &str,
    partition: i32,
) -> Option<CommittedOffset> {
    let mut all = c.fetch_offsets(group_id, Some(&[(topic.to_string(), partition)]));
    assert_eq!(all.len(), 1);
    all.pop().and_then(|(_, o)| o)
}

pub fn heartbeat(c: &mut GroupCoordinator, member_id: &str, generation_id: i32, now: i64) -> i16 {
    c.heartbeat(GROUP, generation_id, member_id, None, now)
}

pub fn leaving(member_id: &str) -> LeavingMember {
    LeavingMember {
        member_id: member_id.into(),
        group_instance_id: None,
    }
}

pub fn state(c: &GroupCoordinator) -> GroupState {
    c.group(GROUP).map_or(GroupState::Dead, |g| g.state)
}

pub fn generation(c: &GroupCoordinator) -> i32 {
    c.group(GROUP).map_or(-1, |g| g.generation_id)
}

pub fn try_join_reply(out: &Output, to: ReplyTo) -> Option<JoinResponse> {
    let found: Vec<&JoinResponse> = out
        .replies
        .iter()
        .filter_map(|(t, r)| match r {
            Reply::Join(j) if *t == to => Some(j),
            _ => None,
        })
        .collect();
    assert!(
        found.len() <= 1,
        "several JoinGroup replies to {to}: {:?}",
        out.replies
    );
    found.first().map(|j| (*j).clone())
}

/// The one JoinGroup reply to `to` in `out`.
pub fn join_reply(out: &Output, to: ReplyTo) -> JoinResponse {
    try_join_reply(out, to)
        .unwrap_or_else(|| panic!("no JoinGroup reply to {to} in {:?}", out.replies))
}

pub fn try_sync_reply(out: &Output, to: ReplyTo) -> Option<SyncResponse> {
    let found: Vec<&SyncResponse> = out
        .replies
        .iter()
        .filter_map(|(t, r)| match r {
            Reply::Sync(s) if *t == to => Some(s),
            _ => None,
        })
        .collect();
    assert!(
        found.len() <= 1,
        "several SyncGroup replies to {to}: {:?}",
        out.replies
    );
    found.first().map(|s| (*s).clone())
}

/// The one SyncGroup reply to `to` in `out`.
pub fn sync_reply(out: &Output, to: ReplyTo) -> SyncResponse {
    try_sync_reply(out, to)
        .unwrap_or_else(|| panic!("no SyncGroup reply to {to} in {:?}", out.replies))
}

/// The group metadata records (non-tombstone) in `records`.
pub fn metadata_records(
    records: &[GroupRecord],
) -> Vec<chronik_group::records::GroupMetadataValue> {
    records
        .iter()
        .filter_map(|r| match r {
            GroupRecord::Metadata { value: Some(v), .. } => Some(v.clone()),
            _ => None,
        })
        .collect()
}

/// What `form_group` produced.
#[derive(Debug, Clone)]
pub struct Round {
    /// Member ids, in the order the members joined.
    pub members: Vec<String>,
    pub leader: String,
    pub generation: i32,
    pub protocol: Option<String>,
    /// Each member's JoinGroup response.
    pub joins: BTreeMap<String, JoinResponse>,
    /// Every record the round produced, in order.
    pub records: Vec<GroupRecord>,
    /// When the round ended (after the initial rebalance delay).
    pub now: i64,
}

impl Round {
    pub fn followers(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| **m != self.leader)
            .cloned()
            .collect()
    }
}

/// Forms `GROUP` with `n` members (client ids `client-0`, `client-1`, ...) joining at `now`.
pub fn form_group(c: &mut GroupCoordinator, n: usize, now: i64) -> Round {
    let reqs = (0..n)
        .map(|i| join_req("").client(&format!("client-{i}")))
        .collect();
    form_group_with(c, reqs, now)
}

/// Forms a group from nothing with a full join + sync round: every request joins at `now`
/// (a request that must first get a member id, v4+, gets it and rejoins with it), the initial
/// rebalance delay passes (`tick`), the followers send SyncGroup, then the leader sends an
/// assignment (`assignment_for` each member) and everyone gets theirs. The group is Stable.
pub fn form_group_with(c: &mut GroupCoordinator, reqs: Vec<JoinRequest>, now: i64) -> Round {
    let group_id = reqs
        .first()
        .map(|r| r.group_id.clone())
        .unwrap_or_else(|| GROUP.to_string());
    assert!(
        c.group(&group_id).is_none_or(|g| g.is(GroupState::Empty)),
        "form_group starts from an empty or unknown group"
    );
    assert!(
        c.config.initial_rebalance_delay_ms > 0,
        "form_group needs an initial rebalance delay"
    );
    let mut all = Output::default();
    let mut tokens = Vec::new();
    for (i, req) in reqs.iter().enumerate() {
        let mut to = DRIVER_JOIN_TOKEN + 2 * i as ReplyTo;
        let mut out = c.join(req.clone(), to, now);
        if let Some(r) = try_join_reply(&out, to) {
            assert_eq!(
                r.error_code,
                error::MEMBER_ID_REQUIRED,
                "unexpected immediate JoinGroup reply {r:?}"
            );
            to += 1;
            let mut rejoin = req.clone();
            rejoin.member_id = r.member_id;
            out = c.join(rejoin, to, now);
            assert!(
                try_join_reply(&out, to).is_none(),
                "the join phase must wait for the initial delay"
            );
        }
        all.merge(out);
        tokens.push(to);
    }
    let end = now + i64::from(c.config.initial_rebalance_delay_ms);
    all.merge(c.tick(end));
    let mut joins = BTreeMap::new();
    let mut members = Vec::new();
    for to in &tokens {
        let r = join_reply(&all, *to);
        assert_eq!(r.error_code, error::NONE, "join failed: {r:?}");
        members.push(r.member_id.clone());
        joins.insert(r.member_id.clone(), r);
    }
    let first = joins.values().next().cloned().unwrap_or_default();
    let (leader, generation) = (first.leader.clone(), first.generation_id);
    assert!(joins
        .values()
        .all(|j| j.generation_id == generation && j.leader == leader));
    let protocol = first.protocol_name.clone();

    let mut sync_tokens = BTreeMap::new();
    for (i, m) in members.iter().filter(|m| **m != leader).enumerate() {
        let to = DRIVER_SYNC_TOKEN + i as ReplyTo;
        let mut req = sync_req(m, generation, Vec::new());
        req.group_id = group_id.clone();
        let out = c.sync(req, to, end);
        assert!(
            out.replies.is_empty() && out.records.is_empty(),
            "followers wait for the leader"
        );
        sync_tokens.insert(m.clone(), to);
    }
    let leader_token = DRIVER_SYNC_TOKEN + 999_999;
    let assignments = members
        .iter()
        .map(|m| (m.clone(), assignment_for(m)))
        .collect();
    let mut req = sync_req(&leader, generation, assignments);
    req.group_id = group_id.clone();
    let out = c.sync(req, leader_token, end);
    sync_tokens.insert(leader.clone(), leader_token);
    for (m, to) in &sync_tokens {
        let r = sync_reply(&out, *to);
        assert_eq!(r.error_code, error::NONE);
        assert_eq!(r.assignment, assignment_for(m));
    }
    all.merge(out);
    assert!(c.group(&group_id).is_some_and(|g| g.is(GroupState::Stable)));
    Round {
        members,
        leader,
        generation,
        protocol,
        joins,
        records: all.records,
        now: end,
    }
}
