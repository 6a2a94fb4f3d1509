#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OffsetFetch.

mod common;

use chronik_group::CommittedOffset;
use common::*;

fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_string(), partition)
}

#[test]
fn an_unknown_group_has_no_offsets() {
    let c = coordinator();
    assert_eq!(
        c.fetch_offsets("nope", Some(&[tp("t", 0), tp("u", 3)])),
        vec![(tp("t", 0), None), (tp("u", 3), None)]
    );
    assert!(c.fetch_offsets("nope", None).is_empty());
}

#[test]
fn requested_partitions_come_back_in_request_order_with_none_for_uncommitted_ones() {
    let mut c = coordinator();
    commit_durably(
        &mut c,
        &standalone_commit(vec![offset("t", 0, 10, "a"), offset("u", 1, 20, "b")]),
        T0,
    );
    let got = c.fetch_offsets(GROUP, Some(&[tp("u", 1), tp("t", 5), tp("t", 0)]));
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, tp("u", 1));
    assert_eq!(got[0].1.as_ref().map(|o| o.offset), Some(20));
    assert_eq!(got[1], (tp("t", 5), None));
    assert_eq!(got[2].1.as_ref().map(|o| o.metadata.as_str()), Some("a"));
}

#[test]
fn fetching_all_returns_every_committed_partition() {
    let mut c = coordinator();
    commit_durably(
        &mut c,
        &standalone_commit(vec![
            offset("u", 0, 3, ""),
            offset("t", 1, 2, ""),
            offset("t", 0, 1, ""),
        ]),
        T0,
    );
    let got: Vec<((String, i32), i64)> = c
        .fetch_offsets(GROUP, None)
        .into_iter()
        .map(|(k, o)| (k, o.unwrap().offset))
        .collect();
    assert_eq!(got, vec![(tp("t", 0), 1), (tp("t", 1), 2), (tp("u", 0), 3)]);
}

#[test]
fn offsets_become_visible_only_once_durable() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    let req = commit_req(
        &round.leader,
        round.generation,
        vec![offset("t", 0, 77, "md")],
    );
    let (_, records) = c.commit_offsets(&req, round.now);
    assert!(c.fetch_offsets(GROUP, None).is_empty());
    assert_eq!(fetch_one(&c, GROUP, "t", 0), None);
    c.apply_written(&records, round.now + 1);
    assert_eq!(
        fetch_one(&c, GROUP, "t", 0),
        Some(CommittedOffset {
            offset: 77,
            leader_epoch: 7,
            metadata: "md".into(),
            commit_timestamp_ms: round.now,
        })
    );
    assert_eq!(c.committed(GROUP, "t", 0).map(|o| o.offset), Some(77));
}

#[test]
fn groups_do_not_see_each_others_offsets() {
    let mut c = coordinator();
    commit_durably(&mut c, &standalone_commit(vec![offset("t", 0, 1, "")]), T0);
    let mut other = standalone_commit(vec![offset("t", 0, 2, "")]);
    other.group_id = "group-2".into();
    commit_durably(&mut c, &other, T0);
    assert_eq!(fetch_one(&c, GROUP, "t", 0).unwrap().offset, 1);
    assert_eq!(fetch_one(&c, "group-2", "t", 0).unwrap().offset, 2);
}
