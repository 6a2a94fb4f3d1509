#![allow(clippy::unwrap_used, clippy::expect_used)]
//! LeaveGroup.

mod common;

use chronik_group::{error, GroupState, LeavingMember};
use common::*;

#[test]
fn a_batch_answers_each_member_and_an_unknown_one_gets_its_own_error() {
    let mut c = coordinator();
    let round = form_group(&mut c, 3, T0);
    let f = round.followers();
    let (group_error, codes, _) = c.leave(
        GROUP,
        &[leaving(&f[0]), leaving("ghost"), leaving(&f[1])],
        round.now + 10,
    );
    assert_eq!(group_error, error::NONE);
    assert_eq!(
        codes,
        vec![error::NONE, error::UNKNOWN_MEMBER_ID, error::NONE]
    );
    let g = c.group(GROUP).unwrap();
    assert_eq!(
        g.members.keys().cloned().collect::<Vec<_>>(),
        vec![round.leader.clone()]
    );
    assert_eq!(g.state, GroupState::PreparingRebalance);
}

#[test]
fn leaving_an_unknown_group_is_unknown_member_id_for_every_member() {
    let mut c = coordinator();
    let (_, codes, out) = c.leave("nope", &[leaving("a"), leaving("b")], T0);
    assert_eq!(
        codes,
        vec![error::UNKNOWN_MEMBER_ID, error::UNKNOWN_MEMBER_ID]
    );
    assert!(out.records.is_empty() && out.replies.is_empty());
    assert!(c.group("nope").is_none());
}

#[test]
fn the_last_member_leaving_empties_the_group_bumps_the_generation_and_stores_it() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let now = round.now + 100;
    let (_, codes, out) = c.leave(
        GROUP,
        &[leaving(&round.members[0]), leaving(&round.members[1])],
        now,
    );
    assert_eq!(codes, vec![error::NONE, error::NONE]);
    assert_eq!(state(&c), GroupState::Empty);
    // Kafka: initNextGeneration on an empty group bumps the generation and stores the empty group.
    assert_eq!(generation(&c), round.generation + 1);
    let stored = metadata_records(&out.records);
    assert_eq!(stored.len(), 1, "{:?}", out.records);
    assert_eq!(stored[0].generation_id, round.generation + 1);
    assert!(stored[0].members.is_empty());
    assert_eq!(stored[0].protocol_name, None);
    assert_eq!(stored[0].leader, None);
    assert_eq!(stored[0].protocol_type, "consumer");
    assert_eq!(stored[0].current_state_timestamp_ms, now);
    assert!(c.group(GROUP).unwrap().rebalance_deadline_ms.is_none());
}

#[test]
fn a_member_leaving_a_stable_group_makes_the_others_rejoin() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let f = round.followers()[0].clone();
    let (_, codes, out) = c.leave(GROUP, &[leaving(&f)], round.now + 10);
    assert_eq!(codes, vec![error::NONE]);
    assert!(out.replies.is_empty());
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(
        heartbeat(&mut c, &round.leader, round.generation, round.now + 20),
        error::REBALANCE_IN_PROGRESS
    );
    let out = c.join(join_req(&round.leader), 1, round.now + 30);
    let r = join_reply(&out, 1);
    assert_eq!(r.generation_id, round.generation + 1);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn a_member_leaving_while_its_join_waits_gets_unknown_member_id_for_that_join() {
    // Kafka's removeMemberAndUpdateGroup answers a pending JoinGroup of the removed member.
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let out = c.join(join_req(&round.leader), 1, round.now + 10);
    assert!(out.replies.is_empty());
    let (_, codes, out) = c.leave(GROUP, &[leaving(&round.leader)], round.now + 20);
    assert_eq!(codes, vec![error::NONE]);
    assert_eq!(join_reply(&out, 1).error_code, error::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_member_leaving_during_completing_rebalance_cancels_the_pending_syncs() {
    let mut c = coordinator();
    for to in 1..=3 {
        c.join(join_req("").client(&format!("c{to}")), to, T0);
    }
    let now = T0 + i64::from(DELAY_MS);
    let out = c.tick(now);
    let leader = join_reply(&out, 1).leader;
    let members: Vec<String> = (1..=3).map(|to| join_reply(&out, to).member_id).collect();
    let followers: Vec<&String> = members.iter().filter(|m| **m != leader).collect();
    c.sync(sync_req(followers[0], 1, Vec::new()), 10, now + 1);
    let (_, _, out) = c.leave(GROUP, &[leaving(followers[1])], now + 2);
    assert_eq!(
        sync_reply(&out, 10).error_code,
        error::REBALANCE_IN_PROGRESS
    );
    assert_eq!(state(&c), GroupState::PreparingRebalance);
}

#[test]
fn a_static_member_can_be_removed_by_instance_id_alone() {
    // KIP-345: LeaveGroup v3+ lets an admin remove a static member by group instance id with
    // no member id; a member id that does not match the instance is fenced.
    let mut c = coordinator();
    let round = form_group_with(
        &mut c,
        vec![join_req("").instance("i-1"), join_req("").instance("i-2")],
        T0,
    );
    let wrong = LeavingMember {
        member_id: "someone-else".into(),
        group_instance_id: Some("i-1".into()),
    };
    let by_instance = LeavingMember {
        member_id: String::new(),
        group_instance_id: Some("i-2".into()),
    };
    let unknown_instance = LeavingMember {
        member_id: String::new(),
        group_instance_id: Some("i-9".into()),
    };
    let (_, codes, _) = c.leave(
        GROUP,
        &[wrong, by_instance, unknown_instance],
        round.now + 10,
    );
    assert_eq!(
        codes,
        vec![
            error::FENCED_INSTANCE_ID,
            error::NONE,
            error::UNKNOWN_MEMBER_ID
        ]
    );
    let g = c.group(GROUP).unwrap();
    assert_eq!(g.members.len(), 1);
    assert!(!g.static_members.contains_key("i-2"));
    assert!(g.static_members.contains_key("i-1"));
}

#[test]
fn a_pending_member_can_leave() {
    let mut c = coordinator();
    let id = join_reply(&c.join(join_req("").v4(), 1, T0), 1).member_id;
    let (_, codes, _) = c.leave(GROUP, &[leaving(&id)], T0 + 10);
    assert_eq!(codes, vec![error::NONE]);
    assert!(c.group(GROUP).unwrap().pending_members.is_empty());
    // It is no longer known: a rejoin with that id is refused.
    let out = c.join(join_req(&id).v4(), 2, T0 + 20);
    assert_eq!(join_reply(&out, 2).error_code, error::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_pending_member_leaving_completes_a_join_phase_that_waited_for_it() {
    // Kafka: the join phase waits for pending member ids (hasAllMembersJoined requires
    // pendingMembers to be empty); removePendingMemberAndUpdateGroup then re-checks the join
    // ("rebalancePurgatory.checkAndComplete") so the others are answered at once.
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let now = round.now + 100;
    let pending = join_reply(&c.join(join_req("").v4().client("p"), 1, now), 1).member_id;
    // The leader rejoins: a rebalance starts and waits for the pending member.
    let out = c.join(join_req(&round.leader), 2, now + 10);
    assert!(out.replies.is_empty());
    assert_eq!(state(&c), GroupState::PreparingRebalance);

    let (_, codes, out) = c.leave(GROUP, &[leaving(&pending)], now + 20);
    assert_eq!(codes, vec![error::NONE]);
    let r = join_reply(&out, 2);
    assert_eq!(r.error_code, error::NONE);
    assert_eq!(r.generation_id, round.generation + 1);
    assert_eq!(state(&c), GroupState::CompletingRebalance);
}
