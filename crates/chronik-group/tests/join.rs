#![allow(clippy::unwrap_used, clippy::expect_used)]
//! JoinGroup.

mod common;

use bytes::Bytes;
use chronik_group::{error, GroupState, JoinResponse};
use common::*;

#[test]
fn v4_first_join_returns_member_id_required_and_the_rejoin_with_it_joins() {
    let mut c = coordinator();
    // KIP-394 (JoinGroup v4+): a new dynamic member gets an id and must rejoin with it.
    let out = c.join(join_req("").v4(), 1, T0);
    let r = join_reply(&out, 1);
    assert_eq!(r.error_code, error::MEMBER_ID_REQUIRED);
    assert!(!r.member_id.is_empty());
    assert_eq!(r.generation_id, -1);
    assert!(out.records.is_empty());
    let g = c.group(GROUP).unwrap();
    assert!(g.members.is_empty(), "not a member until it rejoins");
    assert!(g.pending_members.contains_key(&r.member_id));

    let out = c.join(join_req(&r.member_id).v4(), 2, T0 + 10);
    assert!(
        out.replies.is_empty(),
        "the initial rebalance delay holds the join phase"
    );
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert!(c.group(GROUP).unwrap().members.contains_key(&r.member_id));
    assert!(c.group(GROUP).unwrap().pending_members.is_empty());

    let out = c.tick(T0 + 10 + i64::from(DELAY_MS));
    let joined = join_reply(&out, 2);
    assert_eq!(joined.error_code, error::NONE);
    assert_eq!(joined.member_id, r.member_id);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, r.member_id);
    assert_eq!(state(&c), GroupState::CompletingRebalance);
}

#[test]
fn without_require_known_member_id_a_new_member_joins_directly() {
    let mut c = coordinator();
    let out = c.join(join_req(""), 1, T0);
    assert!(out.replies.is_empty());
    let g = c.group(GROUP).unwrap();
    assert_eq!(g.members.len(), 1);
    assert!(g.pending_members.is_empty());
    let id = g.members.keys().next().unwrap().clone();

    let out = c.tick(T0 + i64::from(DELAY_MS));
    let r = join_reply(&out, 1);
    assert_eq!(r.error_code, error::NONE);
    assert_eq!(r.member_id, id);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
}

#[test]
fn a_join_with_a_member_id_the_group_does_not_know_is_rejected() {
    let mut c = coordinator();
    // Unknown group and a member id: Kafka does not create the group (UNKNOWN_MEMBER_ID).
    let out = c.join(join_req("ghost"), 1, T0);
    assert_eq!(join_reply(&out, 1).error_code, error::UNKNOWN_MEMBER_ID);
    assert!(c.group(GROUP).is_none());

    form_group(&mut c, 1, T0);
    let out = c.join(join_req("ghost"), 2, T0 + 5_000);
    assert_eq!(join_reply(&out, 2).error_code, error::UNKNOWN_MEMBER_ID);
    assert_eq!(state(&c), GroupState::Stable);
}

#[test]
fn invalid_requests_are_rejected_before_touching_the_group() {
    let mut c = coordinator();
    let out = c.join(join_req("").group(""), 1, T0);
    assert_eq!(join_reply(&out, 1).error_code, error::INVALID_GROUP_ID);
    // group.min.session.timeout.ms = 6000, group.max.session.timeout.ms = 1800000.
    let out = c.join(join_req("").session(5_999), 2, T0);
    assert_eq!(
        join_reply(&out, 2).error_code,
        error::INVALID_SESSION_TIMEOUT
    );
    let out = c.join(join_req("").session(1_800_001), 3, T0);
    assert_eq!(
        join_reply(&out, 3).error_code,
        error::INVALID_SESSION_TIMEOUT
    );
    let out = c.join(join_req("").session(6_000), 4, T0);
    assert!(out.replies.is_empty(), "the minimum itself is valid");
}

#[test]
fn a_first_member_without_protocol_type_or_protocols_is_inconsistent() {
    let mut c = coordinator();
    let out = c.join(join_req("").protocol_type(""), 1, T0);
    assert_eq!(
        join_reply(&out, 1).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );
    let out = c.join(join_req("").protocols(&[]), 2, T0);
    assert_eq!(
        join_reply(&out, 2).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );
    assert!(c.group(GROUP).is_none_or(|g| g.members.is_empty()));
}

#[test]
fn a_member_sharing_no_protocol_or_with_another_protocol_type_is_inconsistent() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let out = c.join(join_req("").protocols(&["sticky"]), 1, round.now);
    assert_eq!(
        join_reply(&out, 1).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );
    let out = c.join(join_req("").protocol_type("connect"), 2, round.now);
    assert_eq!(
        join_reply(&out, 2).error_code,
        error::INCONSISTENT_GROUP_PROTOCOL
    );
    assert_eq!(
        state(&c),
        GroupState::Stable,
        "rejected joins do not rebalance"
    );
    assert_eq!(c.group(GROUP).unwrap().members.len(), 1);
}

#[test]
fn the_leader_gets_every_members_metadata_for_the_chosen_protocol_and_followers_get_none() {
    let mut c = coordinator();
    c.join(
        join_req("")
            .client("a")
            .protocols_with(&[("range", "a-range"), ("roundrobin", "a-rr")]),
        1,
        T0,
    );
    c.join(
        join_req("")
            .client("b")
            .protocols_with(&[("range", "b-range"), ("roundrobin", "b-rr")]),
        2,
        T0,
    );
    c.join(
        join_req("")
            .client("c")
            .protocols_with(&[("range", "c-range"), ("roundrobin", "c-rr")]),
        3,
        T0,
    );
    let out = c.tick(T0 + i64::from(DELAY_MS));
    let replies: Vec<JoinResponse> = (1..=3).map(|to| join_reply(&out, to)).collect();
    let leader = replies[0].leader.clone();
    assert!(replies
        .iter()
        .all(|r| r.leader == leader && r.generation_id == 1));
    assert!(replies
        .iter()
        .all(|r| r.protocol_name.as_deref() == Some("range")));
    for r in &replies {
        if r.member_id == leader {
            let mut got: Vec<(String, Option<String>, Bytes)> = r.members.clone();
            got.sort();
            let mut want: Vec<(String, Option<String>, Bytes)> = replies
                .iter()
                .map(|m| {
                    let client = c.group(GROUP).unwrap().members[&m.member_id]
                        .client_id
                        .clone();
                    (
                        m.member_id.clone(),
                        None,
                        Bytes::from(format!("{client}-range")),
                    )
                })
                .collect();
            want.sort();
            assert_eq!(got, want);
        } else {
            assert!(r.members.is_empty(), "followers get no member list");
        }
    }
    assert_eq!(replies.iter().filter(|r| r.member_id == leader).count(), 1);
}

#[test]
fn the_protocol_chosen_is_common_to_all_and_most_preferred() {
    // Kafka's selectProtocol: candidates are the protocols every member supports; each member
    // votes for its most preferred candidate; the most votes wins.
    let mut c = coordinator();
    c.join(join_req("").protocols(&["roundrobin", "range"]), 1, T0);
    c.join(join_req("").protocols(&["roundrobin", "range"]), 2, T0);
    c.join(join_req("").protocols(&["range", "roundrobin"]), 3, T0);
    let out = c.tick(T0 + i64::from(DELAY_MS));
    assert_eq!(
        join_reply(&out, 1).protocol_name.as_deref(),
        Some("roundrobin")
    );
    assert_eq!(
        c.group(GROUP).unwrap().protocol_name.as_deref(),
        Some("roundrobin")
    );

    // "sticky" is everyone's favourite except one member which does not support it: not a candidate.
    let mut c = coordinator();
    c.join(
        join_req("").protocols(&["sticky", "roundrobin", "range"]),
        1,
        T0,
    );
    c.join(
        join_req("").protocols(&["sticky", "range", "roundrobin"]),
        2,
        T0,
    );
    c.join(join_req("").protocols(&["range", "roundrobin"]), 3, T0);
    let out = c.tick(T0 + i64::from(DELAY_MS));
    // Candidates: roundrobin (1 vote: member 1), range (2 votes: members 2 and 3).
    assert_eq!(join_reply(&out, 3).protocol_name.as_deref(), Some("range"));
}

#[test]
fn a_new_member_joining_a_stable_group_starts_a_rebalance_that_everyone_rejoins() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let a = round.leader.clone();
    let now = round.now + 1_000;

    let out = c.join(join_req("").client("b"), 10, now);
    assert!(
        out.replies.is_empty(),
        "waits for the existing member to rejoin"
    );
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert!(
        c.group(GROUP).unwrap().initial_delay_deadline_ms.is_none(),
        "no initial delay: the group was not Empty"
    );

    // The existing member learns about the rebalance from its heartbeat.
    assert_eq!(
        heartbeat(&mut c, &a, round.generation, now + 100),
        error::REBALANCE_IN_PROGRESS
    );
    let out = c.join(join_req(&a), 11, now + 200);
    let ra = join_reply(&out, 11);
    let rb = join_reply(&out, 10);
    assert_eq!(ra.error_code, error::NONE);
    assert_eq!(rb.error_code, error::NONE);
    assert_eq!(ra.generation_id, round.generation + 1);
    assert_eq!(rb.generation_id, round.generation + 1);
    // The existing leader stays the leader.
    assert_eq!(ra.leader, a);
    assert_eq!(rb.leader, a);
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty());
    assert_eq!(state(&c), GroupState::CompletingRebalance);
}

#[test]
fn a_follower_rejoining_a_stable_group_with_the_same_metadata_keeps_the_generation() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let follower = round.followers()[0].clone();
    let out = c.join(join_req(&follower), 1, round.now + 1_000);
    let r = join_reply(&out, 1);
    assert_eq!(r.error_code, error::NONE);
    assert_eq!(r.generation_id, round.generation);
    assert_eq!(r.leader, round.leader);
    assert!(r.members.is_empty());
    assert!(out.records.is_empty());
    assert_eq!(state(&c), GroupState::Stable, "no rebalance");
}

#[test]
fn the_leader_rejoining_a_stable_group_forces_a_rebalance() {
    // Kafka: "force a rebalance if the leader sends JoinGroup" (lets the leader react to
    // changes that do not show in member metadata, such as topic metadata).
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let out = c.join(join_req(&round.leader), 1, round.now + 1_000);
    assert!(out.replies.is_empty());
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    let follower = round.followers()[0].clone();
    let out = c.join(join_req(&follower), 2, round.now + 2_000);
    assert_eq!(join_reply(&out, 1).generation_id, round.generation + 1);
    assert_eq!(join_reply(&out, 2).generation_id, round.generation + 1);
}

#[test]
fn a_follower_rejoining_with_changed_metadata_forces_a_rebalance() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let follower = round.followers()[0].clone();
    let out = c.join(
        join_req(&follower).protocols_with(&[("range", "new-subscription")]),
        1,
        round.now + 1_000,
    );
    assert!(out.replies.is_empty());
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    let out = c.join(join_req(&round.leader), 2, round.now + 2_000);
    let leader_reply = join_reply(&out, 2);
    assert_eq!(leader_reply.generation_id, round.generation + 1);
    let follower_meta = leader_reply
        .members
        .iter()
        .find(|(id, _, _)| *id == follower)
        .map(|(_, _, m)| m.clone());
    assert_eq!(follower_meta, Some(Bytes::from_static(b"new-subscription")));
}

#[test]
fn a_member_repeating_its_join_in_completing_rebalance_gets_the_current_generation() {
    // Kafka: a member that lost its JoinGroup response rejoins with the same metadata and is
    // given the current generation again (the leader with the member list).
    let mut c = coordinator();
    c.join(join_req("").client("a"), 1, T0);
    c.join(join_req("").client("b"), 2, T0);
    let out = c.tick(T0 + i64::from(DELAY_MS));
    let first = join_reply(&out, 1);
    let now = T0 + i64::from(DELAY_MS) + 100;
    let out = c.join(join_req(&first.member_id), 3, now);
    let again = join_reply(&out, 3);
    assert_eq!(again.error_code, error::NONE);
    assert_eq!(again.generation_id, first.generation_id);
    assert_eq!(again.leader, first.leader);
    assert_eq!(again.members.len(), first.members.len());
    assert_eq!(state(&c), GroupState::CompletingRebalance);
}

#[test]
fn an_emptied_group_takes_the_protocol_type_of_its_next_first_member() {
    // Kafka's GroupMetadata.add: `if (members.isEmpty) this.protocolType = Some(member.protocolType)`.
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let (_, codes, _) = c.leave(GROUP, &[leaving(&round.leader)], round.now + 1);
    assert_eq!(codes, vec![error::NONE]);
    assert_eq!(state(&c), GroupState::Empty);

    let now = round.now + 1_000;
    c.join(
        join_req("")
            .protocol_type("connect")
            .protocols(&["sessioned"]),
        1,
        now,
    );
    let out = c.join(
        join_req("")
            .protocol_type("connect")
            .protocols(&["sessioned"]),
        2,
        now,
    );
    assert!(
        out.replies.is_empty(),
        "a second member of the new type is consistent: {:?}",
        out.replies
    );
    let out = c.tick(now + i64::from(DELAY_MS));
    let r = join_reply(&out, 1);
    assert_eq!(r.error_code, error::NONE);
    assert_eq!(r.protocol_type.as_deref(), Some("connect"));
    assert_eq!(join_reply(&out, 2).error_code, error::NONE);
    assert_eq!(
        c.group(GROUP).unwrap().protocol_type.as_deref(),
        Some("connect")
    );
}

#[test]
fn member_ids_are_deterministic() {
    let run = || {
        let mut c = coordinator();
        let mut ids = Vec::new();
        for to in 1..=3 {
            let out = c.join(join_req("").client("app").v4(), to, T0);
            ids.push(join_reply(&out, to).member_id);
        }
        ids
    };
    let ids = run();
    assert_eq!(ids, run());
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3);
    assert!(
        ids.iter().all(|id| id.starts_with("app-")),
        "ids start with the client id, as Kafka's: {ids:?}"
    );
}
