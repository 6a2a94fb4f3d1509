//! `GroupCoordinator`: every group this coordinator owns, rebuilt by replaying records, with
//! its timers as deadlines that `tick(now)` fires.

use crate::group::{Group, GroupState, Member};
use crate::records::GroupRecord;
use crate::types::{CommittedOffset, Output};
use std::collections::BTreeMap;

/// The coordinator's settings, with Kafka's names and defaults.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay_ms: i32,
    /// `offsets.retention.minutes`, in ms
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes`
    pub offset_metadata_max_bytes: usize,
    /// `offsets.retention.check.interval.ms`: how long an Empty group without offsets is kept
    /// before it is removed.
    pub offsets_retention_check_interval_ms: i64,
    /// Distinguishes member ids made by this coordinator instance from earlier ones.
    pub member_id_seed: String,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offset_metadata_max_bytes: 4096,
            offsets_retention_check_interval_ms: 600_000,
            member_id_seed: "0".into(),
        }
    }
}

#[derive(Debug, Default)]
pub struct GroupCoordinator {
    pub config: CoordinatorConfig,
    pub groups: BTreeMap<String, Group>,
    /// Offsets committed inside open transactions, by producer id (see `txn_offsets`).
    pub pending_txn_offsets: BTreeMap<i64, Vec<GroupRecord>>,
}

/// An Empty group with no members, no member ids pending and no committed offsets.
fn is_abandoned(g: &Group) -> bool {
    g.is(GroupState::Empty)
        && g.members.is_empty()
        && g.pending_members.is_empty()
        && g.offsets.is_empty()
}

impl GroupCoordinator {
    pub fn new(config: CoordinatorConfig) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            pending_txn_offsets: BTreeMap::new(),
        }
    }

    /// Forgets the groups `drop` selects (their coordination moved to another node).
    pub fn remove_groups(&mut self, drop: impl Fn(&str) -> bool) {
        self.groups.retain(|id, _| !drop(id));
        for records in self.pending_txn_offsets.values_mut() {
            records.retain(|r| !drop(r.group_id()));
        }
        self.pending_txn_offsets.retain(|_, r| !r.is_empty());
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    /// Applies one durable record. At start-up this rebuilds every group: a group with stored
    /// members comes back Stable with their assignments, and their sessions start at `now_ms`.
    pub fn replay(&mut self, record: &GroupRecord, now_ms: i64) {
        match record {
            GroupRecord::Offset {
                group_id,
                topic,
                partition,
                value,
            } => {
                let key = (topic.clone(), *partition);
                match value {
                    Some(v) => {
                        let g = self
                            .groups
                            .entry(group_id.clone())
                            .or_insert_with(|| Group::new(group_id, now_ms));
                        g.offsets.insert(key, v.clone());
                    }
                    None => {
                        if let Some(g) = self.groups.get_mut(group_id) {
                            g.offsets.remove(&key);
                        }
                    }
                }
            }
            GroupRecord::Metadata {
                group_id,
                value: None,
            } => {
                self.groups.remove(group_id);
            }
            GroupRecord::Metadata {
                group_id,
                value: Some(v),
            } => {
                let g = self
                    .groups
                    .entry(group_id.clone())
                    .or_insert_with(|| Group::new(group_id, now_ms));
                g.generation_id = v.generation_id;
                g.protocol_type = (!v.protocol_type.is_empty()).then(|| v.protocol_type.clone());
                g.protocol_name = v.protocol_name.clone();
                g.leader = v.leader.clone();
                g.members.clear();
                g.static_members.clear();
                for m in &v.members {
                    let protocol = v.protocol_name.clone().unwrap_or_default();
                    if let Some(iid) = &m.group_instance_id {
                        g.static_members.insert(iid.clone(), m.member_id.clone());
                    }
                    g.members.insert(
                        m.member_id.clone(),
                        Member {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            session_timeout_ms: m.session_timeout_ms,
                            rebalance_timeout_ms: m.rebalance_timeout_ms,
                            protocol_type: v.protocol_type.clone(),
                            protocols: vec![(protocol, m.subscription.clone())],
                            assignment: m.assignment.clone(),
                            awaiting_join: None,
                            awaiting_sync: None,
                            session_deadline_ms: now_ms + i64::from(m.session_timeout_ms),
                        },
                    );
                }
                let state = if g.members.is_empty() {
                    GroupState::Empty
                } else {
                    GroupState::Stable
                };
                g.transition(state, v.current_state_timestamp_ms);
            }
        }
    }

    /// Applies records this coordinator produced, once they are durable. Membership and
    /// generations already changed when the operation ran (they are rebalance state, which
    /// Kafka also keeps in memory); committed offsets and deletions take effect only now, so
    /// nothing reads an offset that is not yet on disk.
    pub fn apply_written(&mut self, records: &[GroupRecord], now_ms: i64) {
        for r in records {
            match r {
                GroupRecord::Offset { .. } | GroupRecord::Metadata { value: None, .. } => {
                    self.replay(r, now_ms)
                }
                GroupRecord::Metadata {
                    group_id,
                    value: Some(v),
                } => {
                    if let Some(g) = self.groups.get_mut(group_id) {
                        g.stored_metadata = Some(v.clone());
                    }
                }
            }
        }
    }

    /// Every record needed to rebuild the groups selected by `owns` as they are durably stored:
    /// each group's last stored metadata, then its committed offsets. Replaying a snapshot
    /// alone gives the same durable state as replaying everything before it.
    pub fn snapshot(&self, owns: impl Fn(&str) -> bool) -> Vec<GroupRecord> {
        let mut out = Vec::new();
        for g in self.groups.values().filter(|g| owns(&g.group_id)) {
            if let Some(v) = &g.stored_metadata {
                out.push(GroupRecord::Metadata {
                    group_id: g.group_id.clone(),
                    value: Some(v.clone()),
                });
            }
            for ((topic, partition), o) in &g.offsets {
                out.push(GroupRecord::Offset {
                    group_id: g.group_id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: Some(o.clone()),
                });
            }
        }
        out
    }

    /// The earliest deadline at which `tick` has work to do.
    pub fn next_deadline(&self) -> Option<i64> {
        let mut next: Option<i64> = None;
        let mut consider = |t: i64| next = Some(next.map_or(t, |n| n.min(t)));
        for g in self.groups.values() {
            for m in g.members.values().filter(|m| m.awaiting_join.is_none()) {
                consider(m.session_deadline_ms);
            }
            for d in g.pending_members.values() {
                consider(*d);
            }
            if let Some(d) = g.rebalance_deadline_ms {
                consider(d);
            }
            if let Some(d) = g.initial_delay_deadline_ms {
                consider(d);
            }
            if g.is(GroupState::Empty) && !g.offsets.is_empty() {
                consider(self.offsets_expiry_ms(g));
            }
            if is_abandoned(g) {
                consider(g.state_timestamp_ms + self.config.offsets_retention_check_interval_ms);
            }
        }
        next
    }

    fn offsets_expiry_ms(&self, g: &Group) -> i64 {
        // KIP-211: a group's offsets expire once it has been empty for the retention period;
        // offsets of a group that never had members expire per commit.
        if g.protocol_type.is_some() {
            g.state_timestamp_ms + self.config.offsets_retention_ms
        } else {
            g.offsets
                .values()
                .map(|o| o.commit_timestamp_ms)
                .min()
                .unwrap_or(0)
                + self.config.offsets_retention_ms
        }
    }

    /// Fires every deadline at or before `now_ms`: expired sessions and pending member ids,
    /// ended join phases, and expired offsets of empty groups.
    pub fn tick(&mut self, now_ms: i64) -> Output {
        let mut out = Output::default();
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            let retention = self.config.offsets_retention_ms;
            let cleanup_ms = self.config.offsets_retention_check_interval_ms;
            let expiry = self.groups.get(&id).map(|g| self.offsets_expiry_ms(g));
            let Some(g) = self.groups.get_mut(&id) else {
                continue;
            };
            g.pending_members.retain(|_, d| *d > now_ms);
            let expired: Vec<String> = g
                .members
                .values()
                .filter(|m| m.session_deadline_ms <= now_ms && m.awaiting_join.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            for member_id in expired {
                out.merge(crate::rebalance::remove_member(
                    g,
                    &member_id,
                    now_ms,
                    &self.config,
                ));
            }
            if g.initial_delay_deadline_ms.is_some_and(|d| d <= now_ms) {
                g.initial_delay_deadline_ms = None;
            }
            if g.is(GroupState::PreparingRebalance) {
                if g.rebalance_deadline_ms.is_some_and(|d| d <= now_ms) {
                    out.merge(crate::rebalance::complete_join(g, now_ms));
                } else {
                    out.merge(crate::rebalance::maybe_complete_join(g, now_ms));
                }
            }
            if g.is(GroupState::Empty)
                && !g.offsets.is_empty()
                && expiry.is_some_and(|e| e <= now_ms)
            {
                let doomed: Vec<(String, i32)> = if g.protocol_type.is_some() {
                    g.offsets.keys().cloned().collect()
                } else {
                    g.offsets
                        .iter()
                        .filter(|(_, o)| o.commit_timestamp_ms + retention <= now_ms)
                        .map(|(k, _)| k.clone())
                        .collect()
                };
                // Kafka's cleanupGroupMetadata: an Empty group left without offsets is Dead
                // and removed, with a tombstone for its metadata.
                let group_dies = doomed.len() == g.offsets.len();
                for (topic, partition) in doomed {
                    out.records.push(GroupRecord::Offset {
                        group_id: id.clone(),
                        topic,
                        partition,
                        value: None,
                    });
                }
                if group_dies {
                    out.records.push(GroupRecord::Metadata {
                        group_id: id.clone(),
                        value: None,
                    });
                }
            } else if is_abandoned(g) && g.state_timestamp_ms + cleanup_ms <= now_ms {
                // Kafka's cleanupGroupMetadata: an Empty group with no offsets is removed (with a
                // tombstone if it ever stored metadata, so a replay does not bring it back).
                if g.stored_metadata.is_some() {
                    out.records.push(GroupRecord::Metadata {
                        group_id: id.clone(),
                        value: None,
                    });
                } else {
                    self.groups.remove(&id);
                }
            }
        }
        out
    }

    /// Offsets of a group (empty if unknown).
    pub fn committed(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Option<&CommittedOffset> {
        self.groups
            .get(group_id)?
            .offsets
            .get(&(topic.to_string(), partition))
    }

    /// Creates a new member id (deterministic: seed and counter, no randomness).
    pub(crate) fn new_member_id(&mut self, group_id: &str, client_id: &str, now_ms: i64) -> String {
        let seed = self.config.member_id_seed.clone();
        let g = self
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, now_ms));
        g.next_member_number += 1;
        format!("{client_id}-{seed}-{}", g.next_member_number)
    }
}
