#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Timers fired by `tick(now)`: session expiry, rebalance timeout, initial rebalance delay,
//! pending member id expiry and offset retention.

mod common;

use chronik_group::{error, GroupRecord, GroupState, Output};
use common::*;

const SESSION: i64 = SESSION_MS as i64;
const REBALANCE: i64 = REBALANCE_MS as i64;
const DELAY: i64 = DELAY_MS as i64;

fn offset_tombstones(records: &[GroupRecord]) -> Vec<(String, i32)> {
    let mut v: Vec<(String, i32)> = records
        .iter()
        .filter_map(|r| match r {
            GroupRecord::Offset {
                topic,
                partition,
                value: None,
                ..
            } => Some((topic.clone(), *partition)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn has_group_tombstone(records: &[GroupRecord]) -> bool {
    records
        .iter()
        .any(|r| matches!(r, GroupRecord::Metadata { value: None, .. }))
}

// ---- session expiry -------------------------------------------------------------------------

#[test]
fn a_silent_member_expires_at_its_session_deadline_and_the_others_rebalance() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let follower = round.followers()[0].clone();
    assert_eq!(
        heartbeat(&mut c, &round.leader, round.generation, round.now + 5_000),
        error::NONE
    );
    // The follower's session started when the join phase ended.
    assert_eq!(c.next_deadline(), Some(round.now + SESSION));

    let out = c.tick(round.now + SESSION - 1);
    assert_eq!(out, Output::default());
    assert_eq!(c.group(GROUP).unwrap().members.len(), 2);

    let out = c.tick(round.now + SESSION);
    assert!(out.replies.is_empty());
    assert!(!c.group(GROUP).unwrap().members.contains_key(&follower));
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(
        heartbeat(
            &mut c,
            &round.leader,
            round.generation,
            round.now + SESSION + 1
        ),
        error::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        heartbeat(&mut c, &follower, round.generation, round.now + SESSION + 1),
        error::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn the_last_member_expiring_empties_the_group() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let out = c.tick(round.now + SESSION);
    assert_eq!(state(&c), GroupState::Empty);
    assert_eq!(generation(&c), round.generation + 1);
    let stored = metadata_records(&out.records);
    assert_eq!(stored.len(), 1);
    assert!(stored[0].members.is_empty());
    // Kafka's cleanupGroupMetadata removes an Empty group without offsets on its next run
    // (offsets.retention.check.interval.ms); that is the only timer left.
    let cleanup = round.now + SESSION + 600_000;
    assert_eq!(c.next_deadline(), Some(cleanup));
    c.tick(cleanup - 1);
    assert_eq!(state(&c), GroupState::Empty);
    c.tick(cleanup);
    assert!(c.group(GROUP).is_none(), "the abandoned group is removed");
}

#[test]
fn a_leader_that_never_syncs_expires_and_the_waiting_followers_are_told_to_rejoin() {
    let mut c = coordinator();
    c.join(join_req("").client("a"), 1, T0);
    c.join(join_req("").client("b"), 2, T0);
    let now = T0 + DELAY;
    let out = c.tick(now);
    let (a, b) = (join_reply(&out, 1), join_reply(&out, 2));
    let (leader, follower) = if a.member_id == a.leader {
        (a, b)
    } else {
        (b, a)
    };
    assert!(c
        .sync(sync_req(&follower.member_id, 1, Vec::new()), 3, now + 1)
        .replies
        .is_empty());
    assert_eq!(
        heartbeat(&mut c, &follower.member_id, 1, now + 5_000),
        error::NONE
    );

    let out = c.tick(now + SESSION);
    assert!(!c
        .group(GROUP)
        .unwrap()
        .members
        .contains_key(&leader.member_id));
    assert_eq!(sync_reply(&out, 3).error_code, error::REBALANCE_IN_PROGRESS);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
}

// ---- rebalance timeout ----------------------------------------------------------------------

#[test]
fn the_rebalance_timeout_ends_the_join_phase_without_the_members_that_did_not_rejoin() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let (a, b) = (round.leader.clone(), round.followers()[0].clone());
    let t1 = round.now + 1_000;
    let out = c.join(join_req("").client("newcomer"), 1, t1);
    assert!(out.replies.is_empty());
    assert_eq!(
        c.group(GROUP).unwrap().rebalance_deadline_ms,
        Some(t1 + REBALANCE)
    );
    assert!(c.join(join_req(&a), 2, t1 + 100).replies.is_empty());
    // b keeps heartbeating but never rejoins.
    for at in [t1 + 8_000, t1 + 16_000, t1 + 24_000] {
        assert_eq!(
            heartbeat(&mut c, &b, round.generation, at),
            error::REBALANCE_IN_PROGRESS
        );
        assert_eq!(c.tick(at), Output::default());
    }
    // a and the newcomer wait in JoinGroup longer than their session timeout: members waiting
    // in a join are kept alive (Kafka: hasSatisfiedHeartbeat while awaiting join).
    assert_eq!(c.next_deadline(), Some(t1 + REBALANCE));
    assert_eq!(c.tick(t1 + REBALANCE - 1), Output::default());

    let out = c.tick(t1 + REBALANCE);
    let (ra, rn) = (join_reply(&out, 2), join_reply(&out, 1));
    assert_eq!(ra.error_code, error::NONE);
    assert_eq!(rn.error_code, error::NONE);
    assert_eq!(ra.generation_id, round.generation + 1);
    assert_eq!(
        ra.members.len(),
        2,
        "the leader sees a and the newcomer only"
    );
    let g = c.group(GROUP).unwrap();
    assert!(!g.members.contains_key(&b));
    assert_eq!(g.state, GroupState::CompletingRebalance);
    assert_eq!(
        heartbeat(&mut c, &b, round.generation, t1 + REBALANCE + 1),
        error::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn next_deadline_is_never_in_the_past_after_a_tick() {
    // `next_deadline` is "the earliest deadline at which tick has work to do". A member waiting
    // in JoinGroup is never expired by tick, so its session deadline must not be reported,
    // or a timer loop sleeping until next_deadline spins through a long rebalance.
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let t1 = round.now + 1_000;
    c.join(join_req("").client("newcomer"), 1, t1);
    c.join(join_req(&round.leader), 2, t1 + 100);
    let b = round.followers()[0].clone();
    let mut now = t1;
    while now < t1 + REBALANCE {
        now += 1_000;
        heartbeat(&mut c, &b, round.generation, now);
        let out = c.tick(now);
        let next = c.next_deadline().unwrap();
        assert!(
            next > now,
            "at {now}: next_deadline {next} is not in the future ({out:?})"
        );
    }
}

// ---- initial rebalance delay ----------------------------------------------------------------

#[test]
fn the_initial_rebalance_delay_holds_the_first_join_phase_until_its_deadline() {
    let mut c = coordinator();
    assert!(c.join(join_req("").client("a"), 1, T0).replies.is_empty());
    assert_eq!(
        c.group(GROUP).unwrap().initial_delay_deadline_ms,
        Some(T0 + DELAY)
    );
    assert!(c
        .join(join_req("").client("b"), 2, T0 + 1_000)
        .replies
        .is_empty());
    assert!(
        c.join(join_req("").client("c").v4(), 3, T0 + 2_000)
            .replies
            .len()
            == 1,
        "MEMBER_ID_REQUIRED"
    );
    let cid = c
        .group(GROUP)
        .unwrap()
        .pending_members
        .keys()
        .next()
        .unwrap()
        .clone();
    assert!(c
        .join(join_req(&cid).v4(), 4, T0 + 2_500)
        .replies
        .is_empty());
    assert_eq!(c.next_deadline(), Some(T0 + DELAY));
    assert_eq!(c.tick(T0 + DELAY - 1), Output::default());
    assert_eq!(state(&c), GroupState::PreparingRebalance);

    let out = c.tick(T0 + DELAY);
    for to in [1, 2, 4] {
        let r = join_reply(&out, to);
        assert_eq!(r.error_code, error::NONE);
        assert_eq!(
            r.generation_id, 1,
            "everyone who joined during the delay is in generation 1"
        );
    }
    assert_eq!(state(&c), GroupState::CompletingRebalance);
    assert_eq!(c.group(GROUP).unwrap().members.len(), 3);
}

#[test]
fn a_join_after_the_initial_delay_passed_ends_the_phase_without_waiting_for_tick() {
    let mut c = coordinator();
    c.join(join_req("").client("a"), 1, T0);
    let out = c.join(join_req("").client("b"), 2, T0 + DELAY);
    assert_eq!(join_reply(&out, 1).generation_id, 1);
    assert_eq!(join_reply(&out, 2).generation_id, 1);
}

#[test]
fn without_an_initial_delay_the_first_member_completes_the_join_at_once() {
    let mut c = coordinator_without_delay();
    let out = c.join(join_req(""), 1, T0);
    assert_eq!(join_reply(&out, 1).generation_id, 1);
}

#[test]
fn the_initial_delay_applies_only_to_an_empty_group() {
    // Kafka uses InitialDelayedJoin only when preparing a rebalance from Empty.
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    c.join(join_req("").client("newcomer"), 1, round.now + 10);
    assert_eq!(c.group(GROUP).unwrap().initial_delay_deadline_ms, None);
    let out = c.join(join_req(&round.leader), 2, round.now + 20);
    assert_eq!(join_reply(&out, 1).generation_id, round.generation + 1);
}

// ---- pending member ids ---------------------------------------------------------------------

#[test]
fn a_pending_member_id_expires_after_the_session_timeout() {
    // KIP-394: the id handed out with MEMBER_ID_REQUIRED is remembered for a session timeout.
    let mut c = coordinator();
    let id = join_reply(&c.join(join_req("").v4(), 1, T0), 1).member_id;
    assert_eq!(c.next_deadline(), Some(T0 + SESSION));
    c.tick(T0 + SESSION - 1);
    assert!(c.group(GROUP).unwrap().pending_members.contains_key(&id));
    c.tick(T0 + SESSION);
    assert!(c.group(GROUP).unwrap().pending_members.is_empty());
    let out = c.join(join_req(&id).v4(), 2, T0 + SESSION + 1);
    assert_eq!(join_reply(&out, 2).error_code, error::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_join_phase_waiting_for_a_pending_member_ends_when_its_id_expires() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let t = round.now + 100;
    join_reply(&c.join(join_req("").v4().client("p"), 1, t), 1);
    assert!(c
        .join(join_req(&round.leader), 2, t + 10)
        .replies
        .is_empty());
    assert_eq!(c.tick(t + SESSION - 1), Output::default());
    let out = c.tick(t + SESSION);
    let r = join_reply(&out, 2);
    assert_eq!(r.generation_id, round.generation + 1);
    assert_eq!(r.members.len(), 1);
}

// ---- offset retention -----------------------------------------------------------------------

#[test]
fn offsets_of_an_empty_group_expire_one_retention_period_after_it_emptied() {
    // KIP-211: once a group is empty, all its offsets expire together, `offsets.retention.minutes`
    // after it became empty (not after each commit).
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    commit_durably(
        &mut c,
        &commit_req(&round.leader, round.generation, vec![offset("t", 0, 1, "")]),
        round.now,
    );
    let emptied = round.now + 1_000;
    c.leave(GROUP, &[leaving(&round.leader)], emptied);
    // A later standalone commit (e.g. an admin offset reset) expires with the group.
    commit_durably(
        &mut c,
        &standalone_commit(vec![offset("t", 1, 2, "")]),
        emptied + 60_000,
    );
    assert_eq!(c.next_deadline(), Some(emptied + RETENTION_MS));

    let out = c.tick(emptied + RETENTION_MS - 1);
    assert!(out.records.is_empty());
    let out = c.tick(emptied + RETENTION_MS);
    assert_eq!(
        offset_tombstones(&out.records),
        vec![("t".to_string(), 0), ("t".to_string(), 1)]
    );
    assert_eq!(
        c.fetch_offsets(GROUP, None).len(),
        2,
        "gone only once the tombstones are durable"
    );
    c.apply_written(&out.records, emptied + RETENTION_MS);
    assert!(c.fetch_offsets(GROUP, None).is_empty());
}

#[test]
fn an_empty_group_whose_offsets_expired_is_deleted() {
    // Kafka's cleanupGroupMetadata: an Empty group left without offsets transitions to Dead,
    // is removed, and a tombstone for its metadata is written.
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    commit_durably(
        &mut c,
        &commit_req(&round.leader, round.generation, vec![offset("t", 0, 1, "")]),
        round.now,
    );
    let emptied = round.now + 1_000;
    c.leave(GROUP, &[leaving(&round.leader)], emptied);
    let out = c.tick(emptied + RETENTION_MS);
    assert!(has_group_tombstone(&out.records), "{:?}", out.records);
    c.apply_written(&out.records, emptied + RETENTION_MS);
    assert!(c.group(GROUP).is_none());
    assert_eq!(c.describe(GROUP).state, "Dead");
    assert!(c.list(&[], &[]).is_empty());
    assert_eq!(c.next_deadline(), None);
}

#[test]
fn offsets_of_a_group_with_members_do_not_expire() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    commit_durably(
        &mut c,
        &commit_req(&round.leader, round.generation, vec![offset("t", 0, 1, "")]),
        round.now,
    );
    let later = round.now + RETENTION_MS + 1;
    assert_eq!(
        heartbeat(&mut c, &round.leader, round.generation, later),
        error::NONE
    );
    let out = c.tick(later + 1);
    assert!(out.records.is_empty());
    assert!(fetch_one(&c, GROUP, "t", 0).is_some());
}

#[test]
fn offsets_of_a_standalone_committer_expire_one_retention_period_after_each_commit() {
    // A group that never had members (no protocol type): each offset expires on its own,
    // `offsets.retention.minutes` after its commit.
    let mut c = coordinator();
    commit_durably(&mut c, &standalone_commit(vec![offset("t", 0, 1, "")]), T0);
    commit_durably(
        &mut c,
        &standalone_commit(vec![offset("t", 1, 2, "")]),
        T0 + 1_000,
    );
    assert_eq!(c.next_deadline(), Some(T0 + RETENTION_MS));

    assert!(c.tick(T0 + RETENTION_MS - 1).records.is_empty());
    let out = c.tick(T0 + RETENTION_MS);
    assert_eq!(offset_tombstones(&out.records), vec![("t".to_string(), 0)]);
    assert!(
        !has_group_tombstone(&out.records),
        "the group still has an offset"
    );
    c.apply_written(&out.records, T0 + RETENTION_MS);
    assert!(fetch_one(&c, GROUP, "t", 0).is_none());
    assert!(fetch_one(&c, GROUP, "t", 1).is_some());
    assert_eq!(c.next_deadline(), Some(T0 + 1_000 + RETENTION_MS));

    let out = c.tick(T0 + 1_000 + RETENTION_MS);
    assert_eq!(offset_tombstones(&out.records), vec![("t".to_string(), 1)]);
    // With its last offset gone the group itself is removed (Kafka: Empty without offsets → Dead).
    assert!(has_group_tombstone(&out.records));
    c.apply_written(&out.records, T0 + 1_000 + RETENTION_MS);
    assert!(c.group(GROUP).is_none());
    assert_eq!(c.next_deadline(), None);
}

#[test]
fn a_recommit_postpones_a_standalone_offsets_expiry() {
    let mut c = coordinator();
    commit_durably(&mut c, &standalone_commit(vec![offset("t", 0, 1, "")]), T0);
    commit_durably(
        &mut c,
        &standalone_commit(vec![offset("t", 0, 2, "")]),
        T0 + 5_000,
    );
    assert!(c.tick(T0 + RETENTION_MS).records.is_empty());
    assert_eq!(c.next_deadline(), Some(T0 + 5_000 + RETENTION_MS));
}
