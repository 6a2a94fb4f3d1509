#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OffsetCommit.

mod common;

use chronik_group::{error, CommittedOffset, GroupRecord, GroupState};
use common::*;

#[test]
fn a_standalone_consumer_commits_to_an_unknown_group() {
    // Kafka: generation -1 means "not relying on Kafka for group management": allowed.
    let mut c = coordinator();
    let req = standalone_commit(vec![offset("t", 0, 42, "m0"), offset("t", 1, 43, "m1")]);
    let (codes, records) = c.commit_offsets(&req, T0);
    assert_eq!(codes, vec![error::NONE, error::NONE]);
    assert_eq!(
        records,
        vec![
            GroupRecord::Offset {
                group_id: GROUP.into(),
                topic: "t".into(),
                partition: 0,
                value: Some(CommittedOffset {
                    offset: 42,
                    leader_epoch: 7,
                    metadata: "m0".into(),
                    commit_timestamp_ms: T0,
                }),
            },
            GroupRecord::Offset {
                group_id: GROUP.into(),
                topic: "t".into(),
                partition: 1,
                value: Some(CommittedOffset {
                    offset: 43,
                    leader_epoch: 7,
                    metadata: "m1".into(),
                    commit_timestamp_ms: T0,
                }),
            },
        ]
    );
}

#[test]
fn committed_offsets_are_invisible_until_their_records_are_durable() {
    let mut c = coordinator();
    let req = standalone_commit(vec![offset("t", 0, 42, "meta")]);
    let (_, records) = c.commit_offsets(&req, T0);
    assert_eq!(fetch_one(&c, GROUP, "t", 0), None, "not durable yet");
    assert!(c.fetch_offsets(GROUP, None).is_empty());

    c.apply_written(&records, T0 + 5);
    let got = fetch_one(&c, GROUP, "t", 0).unwrap();
    assert_eq!(got.offset, 42);
    assert_eq!(got.leader_epoch, 7);
    assert_eq!(got.metadata, "meta");
    assert_eq!(
        got.commit_timestamp_ms, T0,
        "the time of the commit, not of the write"
    );
}

#[test]
fn metadata_round_trips_exactly() {
    let mut c = coordinator();
    let texts = [
        "",
        " ",
        "naïve – 日本語 🚀",
        "line\nbreak\t\"quoted\"",
        &"x".repeat(4096),
    ];
    let offsets = texts
        .iter()
        .enumerate()
        .map(|(p, m)| offset("t", p as i32, p as i64, m))
        .collect();
    commit_durably(&mut c, &standalone_commit(offsets), T0);
    for (p, m) in texts.iter().enumerate() {
        assert_eq!(fetch_one(&c, GROUP, "t", p as i32).unwrap().metadata, *m);
    }
}

#[test]
fn metadata_longer_than_the_limit_fails_only_its_partition() {
    // offset.metadata.max.bytes = 4096: larger metadata is OFFSET_METADATA_TOO_LARGE for that
    // partition; the others in the request are committed.
    let mut c = coordinator();
    let big = "x".repeat(4097);
    let exact = "y".repeat(4096);
    let req = standalone_commit(vec![
        offset("t", 0, 1, "ok"),
        offset("t", 1, 2, &big),
        offset("t", 2, 3, &exact),
    ]);
    let (codes, records) = c.commit_offsets(&req, T0);
    assert_eq!(
        codes,
        vec![error::NONE, error::OFFSET_METADATA_TOO_LARGE, error::NONE]
    );
    assert_eq!(records.len(), 2);
    c.apply_written(&records, T0);
    assert_eq!(fetch_one(&c, GROUP, "t", 0).unwrap().offset, 1);
    assert_eq!(fetch_one(&c, GROUP, "t", 1), None);
    assert_eq!(fetch_one(&c, GROUP, "t", 2).unwrap().metadata, exact);
}

#[test]
fn a_standalone_consumer_commits_to_an_empty_group() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    c.leave(GROUP, &[leaving(&round.leader)], round.now + 1);
    assert_eq!(state(&c), GroupState::Empty);
    let (codes, records) = c.commit_offsets(
        &standalone_commit(vec![offset("t", 0, 9, "")]),
        round.now + 2,
    );
    assert_eq!(codes, vec![error::NONE]);
    assert_eq!(records.len(), 1);
}

#[test]
fn a_standalone_commit_to_a_group_with_members_is_refused() {
    // Kafka: "When the group is non-empty, only members can commit offsets."
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let (codes, records) =
        c.commit_offsets(&standalone_commit(vec![offset("t", 0, 9, "")]), round.now);
    assert_eq!(codes, vec![error::UNKNOWN_MEMBER_ID]);
    assert!(records.is_empty());
}

#[test]
fn a_member_commits_with_its_generation() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let f = round.followers()[0].clone();
    let records = commit_durably(
        &mut c,
        &commit_req(&f, round.generation, vec![offset("t", 0, 100, "")]),
        round.now + 5,
    );
    assert_eq!(records.len(), 1);
    assert_eq!(fetch_one(&c, GROUP, "t", 0).unwrap().offset, 100);
}

#[test]
fn a_member_with_the_wrong_generation_is_an_illegal_generation() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let req = commit_req(
        &round.leader,
        round.generation - 1,
        vec![offset("t", 0, 1, ""), offset("t", 1, 1, "")],
    );
    let (codes, records) = c.commit_offsets(&req, round.now);
    assert_eq!(
        codes,
        vec![error::ILLEGAL_GENERATION, error::ILLEGAL_GENERATION]
    );
    assert!(records.is_empty());
}

#[test]
fn an_unknown_member_of_an_active_group_is_unknown_member_id() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let (codes, records) = c.commit_offsets(
        &commit_req("ghost", round.generation, vec![offset("t", 0, 1, "")]),
        round.now,
    );
    assert_eq!(codes, vec![error::UNKNOWN_MEMBER_ID]);
    assert!(records.is_empty());
}

#[test]
fn a_commit_with_a_generation_for_an_unknown_group_is_an_illegal_generation() {
    // Kafka's handleCommitOffsets for a group it does not know: generation >= 0 means "a
    // request coming from an older generation. either way, reject the commit" with
    // ILLEGAL_GENERATION (e.g. the group expired while the consumer thought it was a member).
    let mut c = coordinator();
    let (codes, records) = c.commit_offsets(&commit_req("m-1", 3, vec![offset("t", 0, 1, "")]), T0);
    assert_eq!(codes, vec![error::ILLEGAL_GENERATION]);
    assert!(records.is_empty());
    assert!(c.group(GROUP).is_none());
}

#[test]
fn a_commit_during_completing_rebalance_is_rebalance_in_progress() {
    let mut c = coordinator();
    c.join(join_req("").client("a"), 1, T0);
    let now = T0 + i64::from(DELAY_MS);
    let out = c.tick(now);
    let r = join_reply(&out, 1);
    assert_eq!(state(&c), GroupState::CompletingRebalance);
    let (codes, records) = c.commit_offsets(
        &commit_req(&r.member_id, r.generation_id, vec![offset("t", 0, 1, "")]),
        now,
    );
    assert_eq!(codes, vec![error::REBALANCE_IN_PROGRESS]);
    assert!(records.is_empty());
}

#[test]
fn a_commit_during_preparing_rebalance_with_the_current_generation_is_accepted() {
    // Kafka: "During PreparingRebalance phase, we still allow a commit request" (consumers
    // commit in onPartitionsRevoked before they rejoin).
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    c.join(join_req("").client("newcomer"), 1, round.now + 1);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    let (codes, records) = c.commit_offsets(
        &commit_req(&round.leader, round.generation, vec![offset("t", 0, 5, "")]),
        round.now + 2,
    );
    assert_eq!(codes, vec![error::NONE]);
    assert_eq!(records.len(), 1);
}

#[test]
fn a_commit_from_a_member_counts_as_a_heartbeat() {
    // Kafka's doCommitOffsets: completeAndScheduleNextHeartbeatExpiration for the member.
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let at = round.now + i64::from(SESSION_MS) - 1;
    commit_durably(
        &mut c,
        &commit_req(&round.leader, round.generation, vec![offset("t", 0, 5, "")]),
        at,
    );
    c.tick(round.now + i64::from(SESSION_MS));
    assert_eq!(state(&c), GroupState::Stable);
    c.tick(at + i64::from(SESSION_MS));
    assert_eq!(state(&c), GroupState::Empty);
}

#[test]
fn an_empty_group_id_is_invalid() {
    let mut c = coordinator();
    let mut req = standalone_commit(vec![offset("t", 0, 1, "")]);
    req.group_id = String::new();
    let (codes, records) = c.commit_offsets(&req, T0);
    assert_eq!(codes, vec![error::INVALID_GROUP_ID]);
    assert!(records.is_empty());
}

#[test]
fn a_later_commit_replaces_the_earlier_one() {
    let mut c = coordinator();
    commit_durably(
        &mut c,
        &standalone_commit(vec![offset("t", 0, 1, "first")]),
        T0,
    );
    commit_durably(
        &mut c,
        &standalone_commit(vec![offset("t", 0, 2, "second")]),
        T0 + 1_000,
    );
    let got = fetch_one(&c, GROUP, "t", 0).unwrap();
    assert_eq!(
        (got.offset, got.metadata.as_str(), got.commit_timestamp_ms),
        (2, "second", T0 + 1_000)
    );
}
