//! A consumer group and its members.

use crate::records::{GroupMetadataValue, MemberMetadata};
use crate::types::{CommittedOffset, ReplyTo};
use bytes::Bytes;
use std::collections::BTreeMap;

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name DescribeGroups and ListGroups report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// Supported protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// A JoinGroup waiting for the rebalance to complete.
    pub awaiting_join: Option<ReplyTo>,
    /// A SyncGroup waiting for the leader's assignment.
    pub awaiting_sync: Option<ReplyTo>,
    /// When the session expires unless a heartbeat (or join/sync) arrives.
    pub session_deadline_ms: i64,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, and when they lapse (KIP-394).
    pub pending_members: BTreeMap<String, i64>,
    /// Static members: group instance id → member id.
    pub static_members: BTreeMap<String, String>,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// When the group entered its current state.
    pub state_timestamp_ms: i64,
    /// PreparingRebalance: when the join phase ends even if members are missing.
    pub rebalance_deadline_ms: Option<i64>,
    /// PreparingRebalance from Empty: the join phase does not end before this (initial delay).
    pub initial_delay_deadline_ms: Option<i64>,
    /// The group metadata last made durable (what a snapshot of the group keeps).
    pub stored_metadata: Option<crate::records::GroupMetadataValue>,
    /// Number of member ids generated so far (ids are `<client_id>-<group>-<n>`; deterministic).
    pub next_member_number: u64,
}

impl Group {
    pub fn new(group_id: &str, now_ms: i64) -> Self {
        Self {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            offsets: BTreeMap::new(),
            state_timestamp_ms: now_ms,
            rebalance_deadline_ms: None,
            initial_delay_deadline_ms: None,
            stored_metadata: None,
            next_member_number: 0,
        }
    }

    pub fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    pub fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    /// The group's metadata as stored when a generation's assignment is set or it empties.
    pub fn metadata_value(&self) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: self
                        .protocol_name
                        .as_deref()
                        .map(|p| m.metadata_for(p))
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Longest rebalance timeout among members (the join phase's length).
    pub fn max_rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Whether `member_id` may act for `instance_id` (static membership fencing, KIP-345).
    pub fn is_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        match instance_id {
            Some(iid) => self.static_members.get(iid).is_some_and(|m| m != member_id),
            None => false,
        }
    }
}
