#![allow(clippy::unwrap_used, clippy::expect_used)]
//! DescribeGroups and ListGroups.

mod common;

use bytes::Bytes;
use chronik_group::GroupState;
use common::*;

fn names(groups: &[chronik_group::describe::ListedGroup]) -> Vec<&str> {
    groups.iter().map(|g| g.group_id.as_str()).collect()
}

#[test]
fn an_unknown_group_is_described_as_dead() {
    let c = coordinator();
    let d = c.describe("nope");
    assert_eq!(d.group_id, "nope");
    assert_eq!(d.state, "Dead");
    assert_eq!(d.protocol_type, "");
    assert_eq!(d.protocol_name, "");
    assert!(d.members.is_empty());
}

#[test]
fn a_stable_group_is_described_with_members_metadata_and_assignments() {
    let mut c = coordinator();
    let round = form_group(&mut c, 2, T0);
    let d = c.describe(GROUP);
    assert_eq!(d.state, "Stable");
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.protocol_name, "range");
    assert_eq!(d.members.len(), 2);
    for m in &d.members {
        assert!(round.members.contains(&m.member_id));
        assert!(m.client_id.starts_with("client-"));
        assert_eq!(m.client_host, "/127.0.0.1");
        assert_eq!(m.group_instance_id, None);
        assert_eq!(m.metadata, Bytes::from_static(b"meta-range"));
        assert_eq!(m.assignment, assignment_for(&m.member_id));
    }
}

#[test]
fn a_rebalancing_group_shows_no_protocol_and_no_assignments() {
    let mut c = coordinator();
    form_group(&mut c, 1, T0);
    c.join(join_req("").client("newcomer"), 1, T0 + 10_000);
    let d = c.describe(GROUP);
    assert_eq!(d.state, "PreparingRebalance");
    assert_eq!(d.protocol_name, "");
    assert_eq!(d.members.len(), 2);
    assert!(d.members.iter().all(|m| m.assignment.is_empty()));
}

#[test]
fn an_emptied_group_is_described_as_empty() {
    let mut c = coordinator();
    let round = form_group(&mut c, 1, T0);
    c.leave(GROUP, &[leaving(&round.leader)], round.now);
    let d = c.describe(GROUP);
    assert_eq!(d.state, "Empty");
    assert_eq!(d.protocol_type, "consumer");
    assert!(d.members.is_empty());
}

#[test]
fn list_groups_filters_by_state_case_insensitively() {
    let mut c = coordinator();
    form_group(&mut c, 1, T0); // GROUP: Stable
    let mut other = standalone_commit(vec![offset("t", 0, 1, "")]);
    other.group_id = "offsets-only".into();
    commit_durably(&mut c, &other, T0); // Empty, no protocol type
    c.join(join_req("").group("joining"), 1, T0); // PreparingRebalance (initial delay)

    let all = c.list(&[], &[]);
    assert_eq!(names(&all), vec![GROUP, "joining", "offsets-only"]);
    let stable = all.iter().find(|g| g.group_id == GROUP).unwrap();
    assert_eq!(
        (stable.state, stable.protocol_type.as_str()),
        ("Stable", "consumer")
    );
    let offsets_only = all.iter().find(|g| g.group_id == "offsets-only").unwrap();
    assert_eq!(
        (offsets_only.state, offsets_only.protocol_type.as_str()),
        ("Empty", "")
    );

    assert_eq!(names(&c.list(&["stable".into()], &[])), vec![GROUP]);
    assert_eq!(names(&c.list(&["EMPTY".into()], &[])), vec!["offsets-only"]);
    assert_eq!(
        names(&c.list(&["preparingrebalance".into(), "Stable".into()], &[])),
        vec![GROUP, "joining"]
    );
    assert!(c.list(&["Dead".into()], &[]).is_empty());
    assert!(c.list(&["no-such-state".into()], &[]).is_empty());
    assert_eq!(state(&c), GroupState::Stable);
}

#[test]
fn list_groups_type_filter_knows_only_classic_groups() {
    // KIP-848: every group of this coordinator is a classic group.
    let mut c = coordinator();
    form_group(&mut c, 1, T0);
    assert_eq!(c.list(&[], &["classic".into()]).len(), 1);
    assert_eq!(c.list(&[], &["Classic".into()]).len(), 1);
    assert!(c.list(&[], &["consumer".into()]).is_empty());
}
