//! Retention of a replicated log. Every replica applies its topic's `retention.ms` and
//! `retention.bytes` to its own log, as each Kafka replica does: the Raft group snapshots at the
//! last applied entry below the new log start and purges up to it; the purge deletes the
//! segments (`ReplicaLog::purge`). A replica that needs purged entries (a follower far behind)
//! gets that snapshot and starts its log over where it ends, no later than retention wants.

use crate::log_store::{lock, SharedReplica};
use crate::types::Raft;

/// One retention round of one replica: asks its Raft group to purge up to its snapshot (as far
/// as retention wants) and, when that snapshot ends before where retention wants the log to
/// start, to build a newer one, which the next round purges up to (snapshots are built in the
/// background: a round never waits, and under steady writes each round purges what the
/// previous one snapshotted). The segments go when the group purges (a leader purges once no
/// replication stream still reads those entries). Returns the entry a purge was asked up to.
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
    }
    let Some(upto) = snapshot.map(|s| s.index.min(point.index)) else {
        return Ok(None);
    };
    raft.trigger().purge_log(upto).await?;
    Ok(Some(upto))
}
