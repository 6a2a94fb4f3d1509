#![allow(clippy::unwrap_used, clippy::expect_used)]
//! SyncGroup.

mod common;

use bytes::Bytes;
use chronik_group::{error, GroupRecord, GroupState, JoinResponse};
use common::*;

/// Three members through the join phase of generation 1: (leader, followers, now).
fn completing_rebalance(c: &mut chronik_group::GroupCoordinator) -> (String, Vec<String>, i64) {
    for to in 1..=3 {
        c.join(join_req("").client(&format!("client-{to}")), to, T0);
    }
    let now = T0 + i64::from(DELAY_MS);
    let out = c.tick(now);
    let replies: Vec<JoinResponse> = (1..=3).map(|to| join_reply(&out, to)).collect();
    let leader = replies[0].leader.clone();
    let followers = replies
        .iter()
        .map(|r| r.member_id.clone())
        .filter(|m| *m != leader)
        .collect();
    assert_eq!(state(c), GroupState::CompletingRebalance);
    (leader, followers, now)
}

#[test]
fn followers_wait_for_the_leader_then_everyone_gets_its_assignment() {
    let mut c = coordinator();
    let (leader, followers, now) = completing_rebalance(&mut c);
    for (i, f) in followers.iter().enumerate() {
        let out = c.sync(sync_req(f, 1, Vec::new()), 10 + i as u64, now + 10);
        assert!(
            out.replies.is_empty(),
            "a follower waits for the leader's assignment"
        );
        assert!(out.records.is_empty());
    }
    assert_eq!(state(&c), GroupState::CompletingRebalance);

    let mut assignments: Vec<(String, Bytes)> = followers
        .iter()
        .map(|f| (f.clone(), assignment_for(f)))
        .collect();
    assignments.push((leader.clone(), assignment_for(&leader)));
    let out = c.sync(sync_req(&leader, 1, assignments), 20, now + 20);
    assert_eq!(state(&c), GroupState::Stable);
    for (i, f) in followers.iter().enumerate() {
        let r = sync_reply(&out, 10 + i as u64);
        assert_eq!(r.error_code, error::NONE);
        assert_eq!(r.assignment, assignment_for(f));
        assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
    }
    let r = sync_reply(&out, 20);
    assert_eq!(r.error_code, error::NONE);
    assert_eq!(r.assignment, assignment_for(&leader));
    assert_eq!(out.replies.len(), 3);
}

#[test]
fn the_leaders_sync_produces_the_group_metadata_record() {
    let mut c = coordinator();
    let (leader, followers, now) = completing_rebalance(&mut c);
    let mut assignments: Vec<(String, Bytes)> = followers
        .iter()
        .map(|f| (f.clone(), assignment_for(f)))
        .collect();
    assignments.push((leader.clone(), assignment_for(&leader)));
    let out = c.sync(sync_req(&leader, 1, assignments), 20, now + 20);
    assert_eq!(out.records.len(), 1);
    let GroupRecord::Metadata {
        group_id,
        value: Some(v),
    } = &out.records[0]
    else {
        panic!("expected a group metadata record, got {:?}", out.records);
    };
    assert_eq!(group_id, GROUP);
    assert_eq!(v.protocol_type, "consumer");
    assert_eq!(v.generation_id, 1);
    assert_eq!(v.protocol_name.as_deref(), Some("range"));
    assert_eq!(v.leader.as_deref(), Some(leader.as_str()));
    assert_eq!(v.current_state_timestamp_ms, now + 20);
    assert_eq!(v.members.len(), 3);
    for m in &v.members {
        assert_eq!(m.assignment, assignment_for(&m.member_id));
        assert_eq!(
            m.subscription,
            Bytes::from_static(b"meta-range"),
            "the chosen protocol's metadata"
        );
        assert_eq!(m.session_timeout_ms, SESSION_MS);
        assert_eq!(m.rebalance_timeout_ms, REBALANCE_MS);
        assert_eq!(m.client_host, "/127.0.0.1");
        assert!(m.client_id.starts_with("client-"));
        assert_eq!(m.group_instance_id, None);
    }
}

#[test]
fn a_member_the_leader_left_out_gets_an_empty_assignment() {
    // Kafka: "fill any missing members with an empty assignment".
    let mut c = coordinator();
    let (leader, followers, now) = completing_rebalance(&mut c);
    c.sync(sync_req(&followers[0], 1, Vec::new()), 10, now);
    let out = c.sync(
        sync_req(&leader, 1, vec![(leader.clone(), assignment_for(&leader))]),
        20,
        now,
    );
    assert_eq!(sync_reply(&out, 10).error_code, error::NONE);
    assert!(sync_reply(&out, 10).assignment.is_empty());
    assert_eq!(sync_reply(&out, 20).assignment, assignment_for(&leader));
}

#[test]
fn a_late_sync_in_a_stable_group_returns_the_current_assignment() {
    let mut c = coordinator();
    let round = form_group(&mut c, 3, T0);
    let f = round.followers()[1].clone();
    let out = c.sync(
        sync_req(&f, round.generation, Vec::new()),
        1,
        round.now + 500,
    );
    let r = sync_reply(&out, 1);
    assert_eq!(r.error_code, error::NONE);
    assert_eq!(r.assignment, assignment_for(&f));
    assert!(out.records.is_empty());
    // The leader's assignment in a Stable group is ignored: it is not broadcast.
    let out = c.sync(
        sync_req(
            &round.leader,
            round.generation,
            vec![(f.clone(), Bytes::from_static(b"other"))],
        ),
        2,
        round.now + 600,
    );
    assert_eq!(
        sync_reply(&out, 2).assignment,
        assignment_for(&round.leader)
    );
    assert_eq!(
        c.group(GROUP).unwrap().members[&f].assignment,
        assignment_for(&f)
    );
}

#[test]
fn a_sync_with_the_wrong_generation_is_an_illegal_generation() {
    let mut c = coordinator();
    let (leader, _, now) = completing_rebalance(&mut c);
    let out = c.sync(sync_req(&leader, 0, Vec::new()), 1, now);
    assert_eq!(sync_reply(&out, 1).error_code, error::ILLEGAL_GENERATION);
    let out = c.sync(sync_req(&leader, 2, Vec::new()), 2, now);
    assert_eq!(sync_reply(&out, 2).error_code, error::ILLEGAL_GENERATION);
    assert_eq!(state(&c), GroupState::CompletingRebalance);
}

#[test]
fn a_sync_from_an_unknown_member_or_for_an_unknown_group_is_unknown_member_id() {
    let mut c = coordinator();
    let out = c.sync(sync_req("ghost", 1, Vec::new()), 1, T0);
    assert_eq!(sync_reply(&out, 1).error_code, error::UNKNOWN_MEMBER_ID);
    let (_, _, now) = completing_rebalance(&mut c);
    let out = c.sync(sync_req("ghost", 1, Vec::new()), 2, now);
    assert_eq!(sync_reply(&out, 2).error_code, error::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_sync_during_preparing_rebalance_is_rebalance_in_progress() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    c.join(join_req("").client("newcomer"), 1, round.now + 100);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    let out = c.sync(
        sync_req(&round.leader, round.generation, Vec::new()),
        2,
        round.now + 200,
    );
    assert_eq!(sync_reply(&out, 2).error_code, error::REBALANCE_IN_PROGRESS);
}

#[test]
fn a_rebalance_interrupting_completing_rebalance_answers_pending_syncs_with_rebalance_in_progress()
{
    let mut c = coordinator();
    let (leader, followers, now) = completing_rebalance(&mut c);
    let out = c.sync(sync_req(&followers[0], 1, Vec::new()), 10, now + 10);
    assert!(out.replies.is_empty());
    let out = c.sync(sync_req(&followers[1], 1, Vec::new()), 11, now + 10);
    assert!(out.replies.is_empty());

    // A new member joins before the leader hands in the assignment.
    let out = c.join(join_req("").client("late"), 12, now + 20);
    assert_eq!(
        sync_reply(&out, 10).error_code,
        error::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        sync_reply(&out, 11).error_code,
        error::REBALANCE_IN_PROGRESS
    );
    assert!(try_join_reply(&out, 12).is_none());
    assert_eq!(state(&c), GroupState::PreparingRebalance);

    // The leader's assignment for the interrupted generation is refused.
    let out = c.sync(
        sync_req(&leader, 1, vec![(leader.clone(), assignment_for(&leader))]),
        13,
        now + 30,
    );
    assert_eq!(
        sync_reply(&out, 13).error_code,
        error::REBALANCE_IN_PROGRESS
    );
    assert!(out.records.is_empty());
}

#[test]
fn a_sync_naming_another_protocol_is_inconsistent() {
    let mut c = coordinator();
    let (leader, _, now) = completing_rebalance(&mut c);
    let mut req = sync_req(&leader, 1, Vec::new());
    req.protocol_name = Some("roundrobin".into());
    let out = c.sync(req, 1, now);
    assert_eq!(
        sync_reply(&out, 1).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut req = sync_req(&leader, 1, Vec::new());
    req.protocol_type = Some("connect".into());
    let out = c.sync(req, 2, now);
    assert_eq!(
        sync_reply(&out, 2).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut req = sync_req(&leader, 1, vec![(leader.clone(), assignment_for(&leader))]);
    req.protocol_type = Some("consumer".into());
    req.protocol_name = Some("range".into());
    let out = c.sync(req, 3, now);
    assert_eq!(sync_reply(&out, 3).error_code, error::NONE);
}
