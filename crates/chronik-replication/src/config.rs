//! Raft timing and batching of a partition group, as named limits.

use openraft::{Config, SnapshotPolicy};

/// How often a leader sends heartbeats to its followers.
pub const HEARTBEAT_INTERVAL_MS: u64 = 100;
/// A follower that hears nothing for its election timeout starts an election. The timeout of
/// the replica ranked `r` in a group (its place in the replica set, preferred leader first) is
/// random in `[MIN + r × STEP, MIN + r × STEP + JITTER)`.
pub const ELECTION_TIMEOUT_MIN_MS: u64 = 500;
/// Twice openraft's election tick (1.5 × the heartbeat interval), so that replicas of
/// different ranks never time out in the same tick.
pub const ELECTION_TIMEOUT_STEP_MS: u64 = 300;
pub const ELECTION_TIMEOUT_JITTER_MS: u64 = 100;
/// Most entries (record batches) in one AppendEntries request.
pub const APPEND_ENTRIES_MAX: u64 = 64;
/// Most record-batch bytes in one AppendEntries request of more than one entry. openraft gives
/// an AppendEntries one heartbeat interval to be answered, and the follower writes and fsyncs
/// the entries first: a request this size is written well within it on the disks measured in
/// docs/benchmarks.md. A larger request is refused before it is sent, with a hint of how many
/// entries fit, and openraft sends fewer.
pub const APPEND_ENTRIES_BYTES_MAX: usize = 4 * 1024 * 1024;

/// A follower refuses to vote while its leader lease (its own longest election timeout) runs
/// after the last message from its leader.
fn leader_lease_ms(rank: u64) -> u64 {
    ELECTION_TIMEOUT_MIN_MS + rank.min(8) * ELECTION_TIMEOUT_STEP_MS + ELECTION_TIMEOUT_JITTER_MS
}

/// How long a leader handing its leadership over waits, after its last heartbeat, before it
/// asks the preferred replica to campaign (`PeerRequest::ElectNow`): until every other
/// follower's leader lease has run out, so they vote for it. In a group of 3 or 4 that is
/// before any follower other than the preferred one campaigns by itself (at lease plus
/// election timeout, 1.7 s at the earliest for rank 1).
///
/// The preferred replica does not simply time out first: openraft 0.9 adds 2 × its election
/// timeout to a replica that once saw a longer log when it campaigned (as after a restart)
/// until it campaigns again, and then the others' timers fire first.
pub fn handover_elect_delay(replicas: usize) -> std::time::Duration {
    let highest_rank = replicas.saturating_sub(1) as u64;
    std::time::Duration::from_millis(leader_lease_ms(highest_rank) + HEARTBEAT_INTERVAL_MS)
}

/// The openraft configuration of this node's member of a Raft group, `rank` being this node's
/// place in the group's replica set (0 = preferred leader).
///
/// openraft draws a member's election timeout once and checks it on a fixed tick; members of a
/// group created at the same moment on every node tick in step, so two members whose timeouts
/// fall in the same tick would start every election together and split the vote for ever.
/// Ranked, non-overlapping timeouts rule that out (and let the preferred leader campaign
/// first). Snapshots are never built on a schedule: the log is the data and is kept until
/// retention removes it (`retention`), which snapshots and purges.
pub fn partition_raft_config(name: &str, rank: u64) -> Result<Config, Box<openraft::ConfigError>> {
    let election_timeout_min = ELECTION_TIMEOUT_MIN_MS + rank.min(8) * ELECTION_TIMEOUT_STEP_MS;
    Config {
        cluster_name: name.to_string(),
        heartbeat_interval: HEARTBEAT_INTERVAL_MS,
        election_timeout_min,
        election_timeout_max: leader_lease_ms(rank),
        max_payload_entries: APPEND_ENTRIES_MAX,
        snapshot_policy: SnapshotPolicy::Never,
        // Purged only where retention says (`retention`), never by openraft's own policy.
        max_in_snapshot_log_to_keep: u64::MAX,
        ..Default::default()
    }
    .validate()
    .map_err(Box::new)
}
