//! openraft's own storage test suite against `LogStore` + `PartitionStateMachine` over a real
//! partition log in a temporary directory.

#![allow(clippy::result_large_err)] // openraft's StorageError is what the suite returns

use chronik_replication::{ChronikRaft, LogStore, PartitionStateMachine, ReplicaLog};
use chronik_storage::config::LogConfig;
use chronik_storage::PartitionLog;
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

struct Builder;

fn storage_err(e: impl std::fmt::Display) -> StorageError<u64> {
    openraft::StorageIOError::write(openraft::AnyError::error(e.to_string())).into()
}

impl StoreBuilder<ChronikRaft, LogStore, PartitionStateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, PartitionStateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(storage_err)?;
        let (log, _) =
            PartitionLog::open(dir.path(), LogConfig::default(), 0, 0, 0).map_err(storage_err)?;
        let log = Arc::new(Mutex::new(log));
        let fs = chronik_storage::fs::real();
        let replica = ReplicaLog::open(fs, dir.path(), log, 0).map_err(storage_err)?;
        let replica = Arc::new(Mutex::new(replica));
        let sm = PartitionStateMachine::new(Arc::clone(&replica), Arc::new(Notify::new()));
        Ok((dir, LogStore::new(replica), sm))
    }
}

type S = Suite<ChronikRaft, LogStore, PartitionStateMachine, Builder, tempfile::TempDir>;

/// Runs one case of the suite on a fresh store.
macro_rules! case {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() -> Result<(), StorageError<u64>> {
            let (_dir, store, sm) = Builder.build().await?;
            S::$name(store, sm).await
        }
    };
}

// Every case of openraft 0.9's `Suite::test_store` but one:
// `get_initial_state_membership_from_log_and_sm` appends index 3 right after index 1, a hole that
// `RaftLogStorage::append` rules out ("There must not be a hole in logs") and this store refuses.
case!(last_membership_in_log_initial);
case!(last_membership_in_log);
case!(last_membership_in_log_multi_step);
case!(get_membership_initial);
case!(get_membership_from_log_and_empty_sm);
case!(get_membership_from_empty_log_and_sm);
case!(get_membership_from_log_le_sm_last_applied);
case!(get_membership_from_log_gt_sm_last_applied_1);
case!(get_membership_from_log_gt_sm_last_applied_2);
case!(get_initial_state_without_init);
case!(get_initial_state_with_state);
case!(get_initial_state_last_log_gt_sm);
case!(get_initial_state_last_log_lt_sm);
case!(get_initial_state_log_ids);
case!(get_initial_state_re_apply_committed);
case!(save_vote);
case!(get_log_entries);
case!(limited_get_log_entries);
case!(try_get_log_entry);
case!(initial_logs);
case!(get_log_state);
case!(get_log_id);
case!(last_id_in_log);
case!(last_applied_state);
case!(purge_logs_upto_0);
case!(purge_logs_upto_5);
case!(purge_logs_upto_20);
case!(delete_logs_since_11);
case!(delete_logs_since_0);
case!(append_to_log);
case!(snapshot_meta);
case!(apply_single);
case!(apply_multiple);

#[tokio::test]
async fn transfer_snapshot() -> Result<(), StorageError<u64>> {
    S::transfer_snapshot(&Builder).await
}
