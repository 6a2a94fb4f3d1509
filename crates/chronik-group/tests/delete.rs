#![allow(clippy::unwrap_used, clippy::expect_used)]
//! DeleteGroups and OffsetDelete.

mod common;

use chronik_group::{error, GroupRecord, GroupState};
use common::*;
use std::collections::BTreeSet;

fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_string(), partition)
}

fn subscribed(topics: &[&str]) -> BTreeSet<String> {
    topics.iter().map(|t| (*t).to_string()).collect()
}

/// A group that had a member, committed offsets for t-0, t-1 and u-0, and is now Empty.
fn empty_group_with_offsets(c: &mut chronik_group::GroupCoordinator) -> i64 {
    let round = form_group(c, 1, T0);
    commit_durably(
        c,
        &commit_req(
            &round.leader,
            round.generation,
            vec![
                offset("t", 0, 1, ""),
                offset("t", 1, 2, ""),
                offset("u", 0, 3, ""),
            ],
        ),
        round.now,
    );
    c.leave(GROUP, &[leaving(&round.leader)], round.now + 1);
    assert_eq!(state(c), GroupState::Empty);
    round.now + 1
}

#[test]
fn deleting_a_group_with_members_is_non_empty_group() {
    let mut c = coordinator();
    form_group(&mut c, 1, T0);
    let (codes, records) = c.delete_groups(&[GROUP.to_string()]);
    assert_eq!(codes, vec![error::NON_EMPTY_GROUP]);
    assert!(records.is_empty());
    assert_eq!(state(&c), GroupState::Stable);
}

#[test]
fn deleting_an_unknown_group_is_group_id_not_found() {
    let c = coordinator();
    let (codes, records) = c.delete_groups(&["nope".to_string()]);
    assert_eq!(codes, vec![error::GROUP_ID_NOT_FOUND]);
    assert!(records.is_empty());
}

#[test]
fn deleting_an_empty_group_tombstones_its_offsets_and_metadata_and_it_is_gone_once_durable() {
    let mut c = coordinator();
    let now = empty_group_with_offsets(&mut c);
    let (codes, records) = c.delete_groups(&[GROUP.to_string()]);
    assert_eq!(codes, vec![error::NONE]);
    let mut offset_tombstones: Vec<(String, i32)> = records
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
    offset_tombstones.sort();
    assert_eq!(offset_tombstones, vec![tp("t", 0), tp("t", 1), tp("u", 0)]);
    assert_eq!(
        records.last(),
        Some(&GroupRecord::Metadata {
            group_id: GROUP.into(),
            value: None,
        })
    );
    assert_eq!(records.len(), 4);
    assert!(records
        .iter()
        .all(|r| r.group_id() == GROUP && r.encode_value().is_none()));

    // Nothing changes until the tombstones are durable.
    assert_eq!(state(&c), GroupState::Empty);
    assert_eq!(c.fetch_offsets(GROUP, None).len(), 3);

    c.apply_written(&records, now + 10);
    assert!(c.group(GROUP).is_none());
    assert_eq!(c.describe(GROUP).state, "Dead");
    assert!(c.fetch_offsets(GROUP, None).is_empty());
    assert!(c.list(&[], &[]).is_empty());
    let (codes, _) = c.delete_groups(&[GROUP.to_string()]);
    assert_eq!(codes, vec![error::GROUP_ID_NOT_FOUND]);
}

#[test]
fn a_batch_of_deletions_answers_each_group() {
    let mut c = coordinator();
    form_group(&mut c, 1, T0);
    let mut offsets_only = standalone_commit(vec![offset("t", 0, 1, "")]);
    offsets_only.group_id = "offsets-only".into();
    commit_durably(&mut c, &offsets_only, T0);
    let ids = vec![
        "offsets-only".to_string(),
        GROUP.to_string(),
        "nope".to_string(),
    ];
    let (codes, records) = c.delete_groups(&ids);
    assert_eq!(
        codes,
        vec![
            error::NONE,
            error::NON_EMPTY_GROUP,
            error::GROUP_ID_NOT_FOUND
        ]
    );
    assert!(records.iter().all(|r| r.group_id() == "offsets-only"));
    c.apply_written(&records, T0 + 1);
    assert!(c.group("offsets-only").is_none());
    assert_eq!(state(&c), GroupState::Stable);
}

#[test]
fn offset_delete_refuses_topics_an_active_group_subscribes_to() {
    // KIP-496: OffsetDelete of a topic the (non-empty) group consumes is GROUP_SUBSCRIBED_TO_TOPIC;
    // other topics' offsets are deleted.
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    commit_durably(
        &mut c,
        &commit_req(
            &round.leader,
            round.generation,
            vec![offset("t", 0, 1, ""), offset("old", 0, 2, "")],
        ),
        round.now,
    );
    let (group_error, codes, records) =
        c.delete_offsets(GROUP, &[tp("t", 0), tp("old", 0)], &subscribed(&["t"]));
    assert_eq!(group_error, error::NONE);
    assert_eq!(codes, vec![error::GROUP_SUBSCRIBED_TO_TOPIC, error::NONE]);
    assert_eq!(
        records,
        vec![GroupRecord::Offset {
            group_id: GROUP.into(),
            topic: "old".into(),
            partition: 0,
            value: None,
        }]
    );
    assert!(
        fetch_one(&c, GROUP, "old", 0).is_some(),
        "not deleted until durable"
    );
    c.apply_written(&records, round.now + 1);
    assert!(fetch_one(&c, GROUP, "old", 0).is_none());
    assert!(fetch_one(&c, GROUP, "t", 0).is_some());
}

#[test]
fn offset_delete_on_an_empty_group_deletes_any_topic() {
    let mut c = coordinator();
    let now = empty_group_with_offsets(&mut c);
    let (group_error, codes, records) =
        c.delete_offsets(GROUP, &[tp("t", 0), tp("t", 9)], &subscribed(&["t"]));
    assert_eq!(group_error, error::NONE);
    assert_eq!(codes, vec![error::NONE, error::NONE]);
    assert_eq!(
        records.len(),
        1,
        "no tombstone for a partition without an offset"
    );
    c.apply_written(&records, now);
    assert!(fetch_one(&c, GROUP, "t", 0).is_none());
    assert!(fetch_one(&c, GROUP, "t", 1).is_some());
    assert_eq!(
        state(&c),
        GroupState::Empty,
        "deleting offsets does not delete the group"
    );
}

#[test]
fn offset_delete_of_an_unknown_group_is_group_id_not_found() {
    let c = coordinator();
    let (group_error, codes, records) = c.delete_offsets("nope", &[tp("t", 0)], &subscribed(&[]));
    assert_eq!(group_error, error::GROUP_ID_NOT_FOUND);
    assert!(codes.is_empty());
    assert!(records.is_empty());
}
