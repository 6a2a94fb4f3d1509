#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Static membership (KIP-345): members with a `group.instance.id`.

mod common;

use chronik_group::{error, GroupCoordinator, GroupState};
use common::*;

/// Two static members, `i-a` (client `a`) and `i-b` (client `b`), in a Stable group.
fn static_group(c: &mut GroupCoordinator) -> Round {
    form_group_with(
        c,
        vec![
            join_req("").client("a").instance("i-a"),
            join_req("").client("b").instance("i-b"),
        ],
        T0,
    )
}

/// The instance id and member id of the round's follower.
fn follower_instance(c: &GroupCoordinator, round: &Round) -> (String, String) {
    let f = round.followers()[0].clone();
    let iid = c.group(GROUP).unwrap().members[&f]
        .group_instance_id
        .clone()
        .unwrap();
    (iid, f)
}

#[test]
fn a_static_member_joins_without_member_id_required_even_on_v4() {
    // Kafka: requireKnownMemberId applies to dynamic members only.
    let mut c = coordinator();
    let out = c.join(join_req("").instance("i-1").v4(), 1, T0);
    assert!(out.replies.is_empty());
    let g = c.group(GROUP).unwrap();
    assert!(g.pending_members.is_empty());
    assert_eq!(g.members.len(), 1);
    let id = g.members.keys().next().unwrap().clone();
    assert_eq!(g.static_members.get("i-1"), Some(&id));
    let out = c.tick(T0 + i64::from(DELAY_MS));
    assert_eq!(join_reply(&out, 1).member_id, id);
}

#[test]
fn a_static_member_rejoining_a_stable_group_unchanged_keeps_generation_and_assignment_without_rebalance(
) {
    let mut c = coordinator();
    let round = static_group(&mut c);
    let (iid, old_id) = follower_instance(&c, &round);
    let client = c.group(GROUP).unwrap().members[&old_id].client_id.clone();
    let now = round.now + 1_000;

    // The restarted client has lost its member id.
    let out = c.join(join_req("").client(&client).instance(&iid), 1, now);
    let r = join_reply(&out, 1);
    assert_eq!(r.error_code, error::NONE);
    assert_ne!(r.member_id, old_id, "a new member id replaces the old one");
    assert_eq!(r.generation_id, round.generation);
    assert_eq!(r.leader, round.leader);
    assert!(r.members.is_empty());
    assert_eq!(state(&c), GroupState::Stable, "no rebalance");
    assert_eq!(generation(&c), round.generation);

    // The replacement is stored: the metadata record names the new id with the old assignment.
    let stored = metadata_records(&out.records);
    assert_eq!(stored.len(), 1);
    let m = stored[0]
        .members
        .iter()
        .find(|m| m.group_instance_id.as_deref() == Some(iid.as_str()))
        .unwrap();
    assert_eq!(m.member_id, r.member_id);
    assert_eq!(m.assignment, assignment_for(&old_id));
    assert!(stored[0].members.iter().all(|m| m.member_id != old_id));

    // The new id syncs in the Stable group and gets the assignment it had.
    let out = c.sync(
        sync_req(&r.member_id, r.generation_id, Vec::new()),
        2,
        now + 10,
    );
    let s = sync_reply(&out, 2);
    assert_eq!(s.error_code, error::NONE);
    assert_eq!(s.assignment, assignment_for(&old_id));
    // The other member is not disturbed.
    assert_eq!(
        heartbeat(&mut c, &round.leader, round.generation, now + 20),
        error::NONE
    );
    assert_eq!(
        c.heartbeat(GROUP, round.generation, &r.member_id, Some(&iid), now + 20),
        error::NONE
    );
}

#[test]
fn the_replaced_member_id_is_fenced() {
    let mut c = coordinator();
    let round = static_group(&mut c);
    let (iid, old_id) = follower_instance(&c, &round);
    let now = round.now + 1_000;
    let new_id = join_reply(&c.join(join_req("").instance(&iid), 1, now), 1).member_id;
    let gen = round.generation;

    assert_eq!(
        c.heartbeat(GROUP, gen, &old_id, Some(&iid), now + 1),
        error::FENCED_INSTANCE_ID
    );

    let mut sync = sync_req(&old_id, gen, Vec::new());
    sync.group_instance_id = Some(iid.clone());
    assert_eq!(
        sync_reply(&c.sync(sync, 2, now + 2), 2).error_code,
        error::FENCED_INSTANCE_ID
    );

    let mut commit = commit_req(
        &old_id,
        gen,
        vec![offset("t", 0, 1, ""), offset("t", 1, 1, "")],
    );
    commit.group_instance_id = Some(iid.clone());
    let (codes, records) = c.commit_offsets(&commit, now + 3);
    assert_eq!(
        codes,
        vec![error::FENCED_INSTANCE_ID, error::FENCED_INSTANCE_ID]
    );
    assert!(records.is_empty());

    let out = c.join(join_req(&old_id).instance(&iid), 3, now + 4);
    assert_eq!(join_reply(&out, 3).error_code, error::FENCED_INSTANCE_ID);

    // Without its instance id the old id is simply unknown.
    assert_eq!(
        heartbeat(&mut c, &old_id, gen, now + 5),
        error::UNKNOWN_MEMBER_ID
    );
    // None of this disturbed the group or the new member.
    assert_eq!(state(&c), GroupState::Stable);
    assert_eq!(
        c.heartbeat(GROUP, gen, &new_id, Some(&iid), now + 6),
        error::NONE
    );
    let mut commit = commit_req(&new_id, gen, vec![offset("t", 0, 1, "")]);
    commit.group_instance_id = Some(iid);
    assert_eq!(c.commit_offsets(&commit, now + 7).0, vec![error::NONE]);
}

#[test]
fn a_static_member_rejoining_with_changed_protocols_triggers_a_rebalance() {
    // Kafka: if the group's selected protocol would change, the static member's rejoin
    // prepares a rebalance instead of returning the current generation.
    let mut c = coordinator();
    let round = static_group(&mut c);
    let (iid, _) = follower_instance(&c, &round);
    let now = round.now + 1_000;
    let out = c.join(
        join_req("").instance(&iid).protocols(&["roundrobin"]),
        1,
        now,
    );
    assert!(out.replies.is_empty(), "waits for the rebalance");
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(
        heartbeat(&mut c, &round.leader, round.generation, now + 1),
        error::REBALANCE_IN_PROGRESS
    );

    let out = c.join(
        join_req(&round.leader).instance_of(&c, &round.leader),
        2,
        now + 2,
    );
    let r = join_reply(&out, 1);
    assert_eq!(r.generation_id, round.generation + 1);
    assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(join_reply(&out, 2).generation_id, round.generation + 1);
}

#[test]
fn the_static_leader_rejoining_a_stable_group_stays_leader_without_rebalance() {
    let mut c = coordinator();
    let round = static_group(&mut c);
    let iid = c.group(GROUP).unwrap().members[&round.leader]
        .group_instance_id
        .clone()
        .unwrap();
    let out = c.join(join_req("").instance(&iid), 1, round.now + 1_000);
    let r = join_reply(&out, 1);
    assert_eq!(r.error_code, error::NONE);
    assert_eq!(r.generation_id, round.generation);
    assert_eq!(state(&c), GroupState::Stable);
    let g = c.group(GROUP).unwrap();
    // Kafka's replaceStaticMember: "if (isLeader(oldMemberId)) leaderId = Some(newMemberId)".
    assert_eq!(g.leader.as_deref(), Some(r.member_id.as_str()));
    assert!(!g.members.contains_key(&round.leader));
    let out = c.sync(
        sync_req(&r.member_id, r.generation_id, Vec::new()),
        2,
        round.now + 1_001,
    );
    assert_eq!(
        sync_reply(&out, 2).assignment,
        assignment_for(&round.leader)
    );
}

#[test]
fn a_static_member_rejoining_during_completing_rebalance_fences_its_old_sync_and_rebalances() {
    // Kafka: a known static member rejoining in CompletingRebalance prepares a rebalance (the
    // leader may be assigning to the old member id); the old id's waiting SyncGroup is fenced.
    let mut c = coordinator();
    c.join(join_req("").client("a").instance("i-a"), 1, T0);
    c.join(join_req("").client("b").instance("i-b"), 2, T0);
    let now = T0 + i64::from(DELAY_MS);
    let out = c.tick(now);
    let (ra, rb) = (join_reply(&out, 1), join_reply(&out, 2));
    let (follower, iid) = if ra.member_id == ra.leader {
        (rb, "i-b")
    } else {
        (ra, "i-a")
    };
    assert!(c
        .sync(sync_req(&follower.member_id, 1, Vec::new()), 3, now + 1)
        .replies
        .is_empty());

    let out = c.join(join_req("").instance(iid), 4, now + 2);
    assert_eq!(sync_reply(&out, 3).error_code, error::FENCED_INSTANCE_ID);
    assert!(try_join_reply(&out, 4).is_none());
    assert_eq!(state(&c), GroupState::PreparingRebalance);
}

#[test]
fn a_static_member_whose_session_expires_is_removed_with_its_instance_mapping() {
    let mut c = coordinator();
    let round = static_group(&mut c);
    let (iid, old_id) = follower_instance(&c, &round);
    heartbeat(&mut c, &round.leader, round.generation, round.now + 5_000);
    c.tick(round.now + i64::from(SESSION_MS));
    let g = c.group(GROUP).unwrap();
    assert!(!g.members.contains_key(&old_id));
    assert!(!g.static_members.contains_key(&iid));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    // Coming back, it is a new member of the rebalance.
    let out = c.join(join_req("").instance(&iid), 1, round.now + 11_000);
    assert!(out.replies.is_empty());
    assert!(c.group(GROUP).unwrap().static_members.contains_key(&iid));
}

/// Adds the instance id `member_id` has in the group, if any.
trait InstanceOf {
    fn instance_of(self, c: &GroupCoordinator, member_id: &str) -> Self;
}

impl InstanceOf for chronik_group::JoinRequest {
    fn instance_of(mut self, c: &GroupCoordinator, member_id: &str) -> Self {
        self.group_instance_id = c
            .group(GROUP)
            .and_then(|g| g.members.get(member_id))
            .and_then(|m| m.group_instance_id.clone());
        self
    }
}

#[test]
fn a_static_member_rejoining_with_new_subscription_bytes_but_the_same_selected_protocol_does_not_rebalance(
) {
    // Kafka's updateStaticMemberAndRebalance compares the protocol the group would select, not
    // the metadata bytes: a restarted consumer's subscription usually differs (e.g. no owned
    // partitions yet). The new metadata is stored with the replacement.
    let mut c = coordinator();
    let round = static_group(&mut c);
    let (iid, old_id) = follower_instance(&c, &round);
    let req = join_req("")
        .instance(&iid)
        .protocols_with(&[("range", "restarted"), ("roundrobin", "restarted-rr")]);
    let out = c.join(req, 1, round.now + 1_000);
    let r = join_reply(&out, 1);
    assert_eq!(r.error_code, error::NONE);
    assert_eq!(r.generation_id, round.generation);
    assert_eq!(state(&c), GroupState::Stable);
    let stored = metadata_records(&out.records);
    let m = stored[0]
        .members
        .iter()
        .find(|m| m.member_id == r.member_id)
        .unwrap();
    assert_eq!(m.subscription, bytes::Bytes::from_static(b"restarted"));
    assert_eq!(m.assignment, assignment_for(&old_id));
}
