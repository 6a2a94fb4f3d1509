//! Retention of a replicated log. Every replica applies its topic's `retention.ms` and
//! `retention.bytes` to its own log, as each Kafka replica does: the Raft group snapshots at the
//! last applied entry below the new log start and purges up to it; the purge deletes the
//! segments (`ReplicaLog::purge`). A replica that needs purged entries (a follower far behind)
//! gets that snapshot and starts its log over where it ends, no later than retention wants.

use crate::log_store::{lock, SharedReplica};
use crate::types::Raft;
use std::time::Duration;

/// How long retention waits for the snapshot it asked for before it leaves the purge to its
/// next round.
pub const RETENTION_SNAPSHOT_WAIT_MS: u64 = 5_000;

/// One retention round of one replica: asks its Raft group to snapshot and purge up to where
/// retention wants the log to start. The segments go when the group purges (a leader purges
/// once no replication stream still reads those entries). Returns the entry purged up to.
pub async fn apply(
    raft: &Raft,
    replica: &SharedReplica,
    now_ms: i64,
) -> Result<Option<u64>, openraft::error::Fatal<u64>> {
    let (applied, snapshot) = {
        let m = raft.metrics();
        let m = m.borrow();
        (m.last_applied, m.snapshot)
    };
    let Some(point) = lock(replica).plan_retention(now_ms, applied) else {
        return Ok(None);
    };
    if snapshot < Some(point) {
        raft.trigger().snapshot().await?;
        let built = raft
            .wait(Some(Duration::from_millis(RETENTION_SNAPSHOT_WAIT_MS)))
            .metrics(|m| m.snapshot >= Some(point), "retention snapshot")
            .await;
        if built.is_err() {
            return Ok(None);
        }
    }
    raft.trigger().purge_log(point.index).await?;
    Ok(Some(point.index))
}
