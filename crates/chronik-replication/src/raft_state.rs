//! `raft-state`: a partition replica's vote, last known commit, purge point and last entry (JSON, replaced
//! atomically). The vote is written before it is answered; the commit is a hint written lazily
//! (a lost one is learned again from the leader), like Kafka's high-watermark checkpoint.

use crate::types::{LogId, Vote};
use chronik_storage::error::IoContext;
use chronik_storage::{fsutil, StorageError};
use chronik_types::Offset;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const RAFT_STATE_FILE: &str = "raft-state";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftState {
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
    /// The last entry removed from the front of the log, if any.
    pub purged: Option<LogId>,
    /// Raft index of the first entry kept: after `purged`, or where appends began on an empty
    /// log that never held entries below it.
    #[serde(default)]
    pub first_index: u64,
    /// The Kafka log end offset before the first kept entry.
    pub first_offset: Offset,
    /// The last entry of the log when it was last checkpointed, made durable before it was
    /// recorded: a log that opens shorter than this lost entries it had (a corruption cut it).
    #[serde(default)]
    pub last_log: Option<LogId>,
}

impl RaftState {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(RAFT_STATE_FILE)
    }

    /// Reads the file; a missing file is a new replica.
    pub fn load(dir: &Path) -> Result<Self, StorageError> {
        let path = Self::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Replaces the file durably.
    pub fn store(&self, dir: &Path) -> Result<(), StorageError> {
        let path = Self::path(dir);
        let bytes = serde_json::to_vec(self).map_err(|e| StorageError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        fsutil::write_atomic(&path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    /// Golden bytes: docs/formats/raft-state.md shows this file.
    #[test]
    fn golden_bytes() {
        let state = RaftState {
            vote: Some(Vote::new_committed(3, 2)),
            committed: Some(LogId::new(CommittedLeaderId::new(3, 0), 41)),
            purged: None,
            first_index: 0,
            first_offset: 0,
            last_log: Some(LogId::new(CommittedLeaderId::new(3, 0), 44)),
        };
        let json = serde_json::to_string(&state).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"vote":{"leader_id":{"term":3,"voted_for":2},"committed":true},"committed":{"leader_id":3,"index":41},"purged":null,"first_index":0,"first_offset":0,"last_log":{"leader_id":3,"index":44}}"#
        );
        let back: RaftState = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, state);
    }

    /// Files written before `last_log` existed still load.
    #[test]
    fn a_file_without_last_log_loads() -> Result<(), serde_json::Error> {
        let old =
            r#"{"vote":null,"committed":null,"purged":null,"first_index":0,"first_offset":0}"#;
        assert_eq!(serde_json::from_str::<RaftState>(old)?.last_log, None);
        Ok(())
    }

    #[test]
    fn store_and_load_round_trip() -> Result<(), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageError::io("tempdir", e))?;
        assert_eq!(RaftState::load(dir.path())?, RaftState::default());
        let state = RaftState {
            vote: Some(Vote::new(5, 1)),
            committed: None,
            purged: Some(LogId::new(CommittedLeaderId::new(2, 0), 9)),
            first_index: 10,
            first_offset: 120,
            last_log: None,
        };
        state.store(dir.path())?;
        assert_eq!(RaftState::load(dir.path())?, state);
        Ok(())
    }
}
