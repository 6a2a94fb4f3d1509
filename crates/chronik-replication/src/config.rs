//! Raft timing and batching of a partition group, as named limits.

use openraft::{Config, SnapshotPolicy};

/// How often a leader sends heartbeats to its followers.
pub const HEARTBEAT_INTERVAL_MS: u64 = 100;
/// A follower that hears nothing for a random time in this range starts an election.
pub const ELECTION_TIMEOUT_MIN_MS: u64 = 500;
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 1000;
/// Most entries (record batches) in one AppendEntries request.
pub const APPEND_ENTRIES_MAX: u64 = 64;

/// The openraft configuration of a partition's Raft group. Snapshots are never built on a
/// schedule: the log is the data and is kept until retention removes it.
pub fn partition_raft_config(name: &str) -> Result<Config, Box<openraft::ConfigError>> {
    Config {
        cluster_name: name.to_string(),
        heartbeat_interval: HEARTBEAT_INTERVAL_MS,
        election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
        max_payload_entries: APPEND_ENTRIES_MAX,
        snapshot_policy: SnapshotPolicy::Never,
        ..Default::default()
    }
    .validate()
    .map_err(Box::new)
}
