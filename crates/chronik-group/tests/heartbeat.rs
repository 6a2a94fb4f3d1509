#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Heartbeat.

mod common;

use chronik_group::{error, GroupState};
use common::*;

#[test]
fn a_heartbeat_for_an_unknown_group_or_member_is_unknown_member_id() {
    let mut c = coordinator();
    assert_eq!(heartbeat(&mut c, "ghost", 1, T0), error::UNKNOWN_MEMBER_ID);
    let round = form_group(&mut c, 2, T0);
    assert_eq!(
        heartbeat(&mut c, "ghost", round.generation, round.now),
        error::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        c.heartbeat(
            "other-group",
            round.generation,
            &round.leader,
            None,
            round.now
        ),
        error::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn a_heartbeat_with_the_wrong_generation_is_an_illegal_generation() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    assert_eq!(
        heartbeat(&mut c, &round.leader, round.generation - 1, round.now),
        error::ILLEGAL_GENERATION
    );
    assert_eq!(
        heartbeat(&mut c, &round.leader, round.generation + 1, round.now),
        error::ILLEGAL_GENERATION
    );
}

#[test]
fn heartbeats_in_stable_and_completing_rebalance_succeed() {
    let mut c = coordinator();
    c.join(join_req("").client("a"), 1, T0);
    c.join(join_req("").client("b"), 2, T0);
    let now = T0 + i64::from(DELAY_MS);
    let out = c.tick(now);
    let a = join_reply(&out, 1);
    assert_eq!(state(&c), GroupState::CompletingRebalance);
    // Kafka: consumers may heartbeat after the JoinGroup response, before SyncGroup completes.
    assert_eq!(
        heartbeat(&mut c, &a.member_id, a.generation_id, now + 100),
        error::NONE
    );

    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    for m in &round.members {
        assert_eq!(
            heartbeat(&mut c, m, round.generation, round.now + 100),
            error::NONE
        );
    }
}

#[test]
fn a_heartbeat_during_preparing_rebalance_asks_the_member_to_rejoin() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    c.join(join_req("").client("newcomer"), 1, round.now + 100);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    for m in &round.members {
        assert_eq!(
            heartbeat(&mut c, m, round.generation, round.now + 200),
            error::REBALANCE_IN_PROGRESS
        );
    }
}

#[test]
fn a_heartbeat_keeps_the_session_alive() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let m = round.leader.clone();
    // The session started when the join phase ended (round.now); heartbeat just before it ends.
    let hb = round.now + i64::from(SESSION_MS) - 1;
    assert_eq!(heartbeat(&mut c, &m, round.generation, hb), error::NONE);
    let out = c.tick(round.now + i64::from(SESSION_MS));
    assert!(out.records.is_empty() && out.replies.is_empty());
    assert_eq!(state(&c), GroupState::Stable);
    assert_eq!(c.next_deadline(), Some(hb + i64::from(SESSION_MS)));
    c.tick(hb + i64::from(SESSION_MS) - 1);
    assert_eq!(state(&c), GroupState::Stable);
    c.tick(hb + i64::from(SESSION_MS));
    assert_eq!(
        state(&c),
        GroupState::Empty,
        "expired one session timeout after the last heartbeat"
    );
}

#[test]
fn a_heartbeat_after_the_member_was_removed_is_unknown_member_id() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let f = round.followers()[0].clone();
    c.leave(GROUP, &[leaving(&f)], round.now + 10);
    assert_eq!(
        heartbeat(&mut c, &f, round.generation, round.now + 20),
        error::UNKNOWN_MEMBER_ID
    );
}
