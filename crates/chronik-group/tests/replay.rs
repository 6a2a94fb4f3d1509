#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Rebuilding the coordinator from `__consumer_offsets` records (`replay`) and applying
//! written records (`apply_written`).

mod common;

use bytes::Bytes;
use chronik_group::{error, CommittedOffset, Group, GroupCoordinator, GroupRecord, GroupState};
use common::*;
use std::collections::BTreeMap;

/// A member as it must survive a restart: (member id, instance id, client id, client host,
/// session timeout, rebalance timeout, metadata of the chosen protocol, assignment).
type DurableMember = (
    String,
    Option<String>,
    String,
    String,
    i32,
    i32,
    Bytes,
    Bytes,
);

/// What must survive a restart of a Stable group: everything but timers and waiting requests.
#[derive(Debug, PartialEq, Eq)]
struct Durable {
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    members: Vec<DurableMember>,
    static_members: BTreeMap<String, String>,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
}

fn durable(g: &Group) -> Durable {
    let protocol = g.protocol_name.clone().unwrap_or_default();
    Durable {
        state: g.state,
        generation: g.generation_id,
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol_name.clone(),
        leader: g.leader.clone(),
        members: g
            .members
            .values()
            .map(|m| {
                (
                    m.member_id.clone(),
                    m.group_instance_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    m.session_timeout_ms,
                    m.rebalance_timeout_ms,
                    m.metadata_for(&protocol),
                    m.assignment.clone(),
                )
            })
            .collect(),
        static_members: g.static_members.clone(),
        offsets: g.offsets.clone(),
    }
}

/// Replays `records` into a fresh coordinator at `now`, through their stored bytes.
fn restart(records: &[GroupRecord], now: i64) -> GroupCoordinator {
    let mut c = coordinator();
    for r in records {
        let key = r.encode_key();
        let value = r.encode_value();
        let decoded = GroupRecord::decode(&key, value.as_deref()).unwrap();
        assert_eq!(&decoded, r, "records survive their encoding");
        c.replay(&decoded, now);
    }
    c
}

/// A Stable group (one static member, two dynamic) with durable offsets; returns every record
/// the sequence produced, in order.
fn history(c: &mut GroupCoordinator) -> (Round, Vec<GroupRecord>) {
    let round = form_group_with(
        c,
        vec![
            join_req("").client("a").instance("static-a"),
            join_req("").client("b").v4(),
            join_req("")
                .client("c")
                .protocols_with(&[("range", "c-range"), ("roundrobin", "c-rr")]),
        ],
        T0,
    );
    let mut records = round.records.clone();
    let commit = commit_req(
        &round.leader,
        round.generation,
        vec![
            offset("t", 0, 10, "zero"),
            offset("t", 1, 11, ""),
            offset("u", 0, 12, "ü"),
        ],
    );
    records.extend(commit_durably(c, &commit, round.now + 10));
    let commit = commit_req(
        &round.followers()[0],
        round.generation,
        vec![offset("t", 0, 20, "again")],
    );
    records.extend(commit_durably(c, &commit, round.now + 20));
    (round, records)
}

#[test]
fn replaying_an_operation_sequence_rebuilds_the_same_offsets_and_stable_group() {
    let mut c = coordinator();
    let (round, records) = history(&mut c);
    let live = durable(c.group(GROUP).unwrap());
    assert_eq!(live.state, GroupState::Stable);
    assert_eq!(live.offsets.len(), 3);

    let rebuilt = restart(&records, round.now + 60_000);
    assert_eq!(durable(rebuilt.group(GROUP).unwrap()), live);
    assert_eq!(
        rebuilt.fetch_offsets(GROUP, None),
        c.fetch_offsets(GROUP, None)
    );
    assert_eq!(
        fetch_one(&rebuilt, GROUP, "t", 0).unwrap().metadata,
        "again"
    );
    assert_eq!(fetch_one(&rebuilt, GROUP, "u", 0).unwrap().metadata, "ü");
    assert_eq!(rebuilt.describe(GROUP), c.describe(GROUP));
}

#[test]
fn rebuilt_members_carry_on_and_their_sessions_start_at_replay_time() {
    let mut c = coordinator();
    let (round, records) = history(&mut c);
    let r = round.now + 60_000;
    let mut rebuilt = restart(&records, r);
    assert_eq!(rebuilt.next_deadline(), Some(r + i64::from(SESSION_MS)));
    for m in &round.members {
        assert_eq!(
            heartbeat(&mut rebuilt, m, round.generation, r + 1),
            error::NONE
        );
        let out = rebuilt.sync(sync_req(m, round.generation, Vec::new()), 1, r + 2);
        assert_eq!(sync_reply(&out, 1).assignment, assignment_for(m));
    }
    // A restarted static member is recognised by its instance id and keeps its assignment.
    let out = rebuilt.join(join_req("").client("a").instance("static-a"), 2, r + 3);
    let j = join_reply(&out, 2);
    assert_eq!(j.generation_id, round.generation);
    assert_eq!(rebuilt.group(GROUP).unwrap().state, GroupState::Stable);

    let mut rebuilt = restart(&records, r);
    rebuilt.tick(r + i64::from(SESSION_MS) - 1);
    assert_eq!(rebuilt.group(GROUP).unwrap().members.len(), 3);
    rebuilt.tick(r + i64::from(SESSION_MS));
    assert_eq!(rebuilt.group(GROUP).unwrap().state, GroupState::Empty);
}

#[test]
fn the_latest_generation_wins() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let mut records = round.records.clone();
    let now = round.now + 1_000;
    // A third member joins: generation 2.
    let mut out = c.join(join_req("").client("late"), 1, now);
    for (i, m) in round.members.iter().enumerate() {
        out.merge(c.join(join_req(m), 2 + i as u64, now + 1));
    }
    records.extend(out.records.clone());
    let leader = join_reply(&out, 2).leader;
    let members: Vec<String> = c.group(GROUP).unwrap().members.keys().cloned().collect();
    let out = c.sync(
        sync_req(
            &leader,
            2,
            members
                .iter()
                .map(|m| (m.clone(), assignment_for(m)))
                .collect(),
        ),
        9,
        now + 2,
    );
    assert_eq!(sync_reply(&out, 9).error_code, error::NONE);
    records.extend(out.records);

    let rebuilt = restart(&records, now + 10);
    let g = rebuilt.group(GROUP).unwrap();
    assert_eq!(g.generation_id, 2);
    assert_eq!(g.members.len(), 3);
    assert_eq!(durable(g), durable(c.group(GROUP).unwrap()));
}

#[test]
fn an_emptied_group_comes_back_empty_and_continues_its_generations() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let mut records = round.records.clone();
    let (_, _, out) = c.leave(GROUP, &[leaving(&round.leader)], round.now + 5);
    records.extend(out.records);

    let mut rebuilt = restart(&records, round.now + 100);
    let g = rebuilt.group(GROUP).unwrap();
    assert_eq!(g.state, GroupState::Empty);
    assert_eq!(g.generation_id, round.generation + 1);
    assert!(g.members.is_empty());
    assert_eq!(g.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(
        g.state_timestamp_ms,
        round.now + 5,
        "the stored time the group became Empty"
    );

    rebuilt.join(join_req(""), 1, round.now + 200);
    let out = rebuilt.tick(round.now + 200 + i64::from(DELAY_MS));
    assert_eq!(join_reply(&out, 1).generation_id, round.generation + 2);
}

#[test]
fn tombstones_delete_offsets_and_groups() {
    let mut c = coordinator();
    let (round, mut records) = history(&mut c);
    records.push(GroupRecord::Offset {
        group_id: GROUP.into(),
        topic: "t".into(),
        partition: 1,
        value: None,
    });
    let rebuilt = restart(&records, round.now + 100);
    assert!(fetch_one(&rebuilt, GROUP, "t", 1).is_none());
    assert!(fetch_one(&rebuilt, GROUP, "t", 0).is_some());

    // A group tombstone removes the group and whatever it had.
    records.push(GroupRecord::Metadata {
        group_id: GROUP.into(),
        value: None,
    });
    let rebuilt = restart(&records, round.now + 100);
    assert!(rebuilt.group(GROUP).is_none());
    assert!(rebuilt.fetch_offsets(GROUP, None).is_empty());

    // A tombstone for something unknown is harmless.
    let rebuilt = restart(
        &[GroupRecord::Offset {
            group_id: "nope".into(),
            topic: "t".into(),
            partition: 0,
            value: None,
        }],
        T0,
    );
    assert!(rebuilt.groups.is_empty());
}

#[test]
fn replaying_the_delete_groups_tombstones_leaves_nothing() {
    let mut c = coordinator();
    let (round, mut records) = history(&mut c);
    let (_, _, out) = c.leave(
        GROUP,
        &round.members.iter().map(|m| leaving(m)).collect::<Vec<_>>(),
        round.now + 30,
    );
    records.extend(out.records);
    let (codes, tombstones) = c.delete_groups(&[GROUP.to_string()]);
    assert_eq!(codes, vec![error::NONE]);
    records.extend(tombstones);
    let rebuilt = restart(&records, round.now + 100);
    assert!(rebuilt.groups.is_empty());
}

#[test]
fn apply_written_applies_only_offsets_and_tombstones() {
    // Membership changes take effect when the operation runs; only offsets and deletions wait
    // for their records to be durable. So apply_written ignores group metadata records.
    let mut c = coordinator();
    let (round, records) = history(&mut c);
    let metadata: Vec<GroupRecord> = records
        .iter()
        .filter(|r| matches!(r, GroupRecord::Metadata { .. }))
        .cloned()
        .collect();
    let offsets: Vec<GroupRecord> = records
        .iter()
        .filter(|r| matches!(r, GroupRecord::Offset { .. }))
        .cloned()
        .collect();
    assert!(!metadata.is_empty() && !offsets.is_empty());

    let mut fresh = coordinator();
    fresh.apply_written(&metadata, round.now);
    assert!(
        fresh.group(GROUP).is_none(),
        "a metadata record does not create members"
    );
    fresh.apply_written(&offsets, round.now);
    let g = fresh.group(GROUP).unwrap();
    assert!(g.members.is_empty());
    assert_eq!(g.state, GroupState::Empty);
    assert_eq!(g.offsets, c.group(GROUP).unwrap().offsets);

    // On the live coordinator, re-applying an older generation's metadata changes nothing.
    let before = durable(c.group(GROUP).unwrap());
    let stale = GroupRecord::Metadata {
        group_id: GROUP.into(),
        value: Some(chronik_group::records::GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation_id: 0,
            protocol_name: None,
            leader: None,
            current_state_timestamp_ms: 0,
            members: Vec::new(),
        }),
    };
    c.apply_written(std::slice::from_ref(&stale), round.now + 1);
    assert_eq!(durable(c.group(GROUP).unwrap()), before);

    // A group tombstone is applied.
    fresh.apply_written(
        &[GroupRecord::Metadata {
            group_id: GROUP.into(),
            value: None,
        }],
        round.now,
    );
    assert!(fresh.group(GROUP).is_none());
}

#[test]
fn replaying_twice_gives_the_same_state() {
    let mut c = coordinator();
    let (round, records) = history(&mut c);
    let mut twice = records.clone();
    twice.extend(records.iter().cloned());
    let once = restart(&records, round.now + 100);
    let again = restart(&twice, round.now + 100);
    assert_eq!(
        durable(once.group(GROUP).unwrap()),
        durable(again.group(GROUP).unwrap())
    );
}
