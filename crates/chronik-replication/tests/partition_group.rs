//! A partition's Raft group of three replicas, in one process over an in-memory network, each
//! replica on its own real partition log: election, replication with contiguous offsets,
//! identical logs, leader failover, truncation of a deposed leader's uncommitted suffix, and a
//! replica restarted from its data directory catching up.

mod common;

use chronik_replication::replica_log::lock_log;
use chronik_replication::types::{NodeId, Raft};
use common::{
    applied, assert_contiguous, batch, leader_of, start_replica, stored, write, Replica, Router,
    TestResult, WAIT,
};
use std::collections::{BTreeMap, BTreeSet};

async fn three_replicas(
    dirs: &[tempfile::TempDir],
    router: &Router,
) -> Result<BTreeMap<NodeId, Replica>, Box<dyn std::error::Error + Send + Sync>> {
    let mut replicas = BTreeMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = i as NodeId + 1;
        replicas.insert(id, start_replica(id, dir.path(), router).await?);
    }
    let members: BTreeSet<NodeId> = replicas.keys().copied().collect();
    replicas
        .get(&1)
        .ok_or("replica 1")?
        .raft
        .initialize(members)
        .await?;
    Ok(replicas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_fails_over_and_truncates_a_deposed_leaders_suffix() -> TestResult {
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let router = Router::default();
    let mut replicas = three_replicas(&dirs, &router).await?;
    let rafts: Vec<&Raft> = replicas.values().map(|r| &r.raft).collect();
    let leader = leader_of(&rafts).await?;

    // Replication: contiguous offsets from 0 (Raft-only entries take none), the same bytes on
    // every replica, the leader epoch (term) stamped into each batch.
    let first = write(&replicas[&leader].raft, 0, 20).await?;
    assert_contiguous(&first.offsets, 0);
    let end = first.end_offset();
    for r in replicas.values() {
        applied(&r.raft, first.last_index).await?;
    }
    let logs: Vec<_> = replicas.values().map(stored).collect::<Result<_, _>>()?;
    assert_eq!(logs[0].len(), 20);
    assert!(
        logs.iter().all(|l| *l == logs[0]),
        "replica logs are identical"
    );
    for r in replicas.values() {
        assert_eq!(lock_log(&r.log).high_watermark(), end);
    }

    // A deposed leader: cut it off, let it append entries it can never commit, elect a new
    // leader among the other two, write there, then heal.
    let old = leader;
    let others: Vec<NodeId> = replicas.keys().copied().filter(|id| *id != old).collect();
    router.isolate(old, &others);
    let mut pending = Vec::new();
    for i in 100..103 {
        let raft = replicas[&old].raft.clone();
        pending.push(tokio::spawn(
            async move { raft.client_write(batch(i)).await },
        ));
    }
    replicas[&old]
        .raft
        .wait(WAIT)
        .metrics(
            |m| m.last_log_index >= Some(20 + 3),
            "the isolated leader appended entries locally",
        )
        .await?;
    let rest: Vec<&Raft> = others.iter().map(|id| &replicas[id].raft).collect();
    let new_leader = rest[0]
        .wait(WAIT)
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != old),
            "a new leader among the majority",
        )
        .await?
        .current_leader
        .ok_or("no leader")?;
    assert_ne!(new_leader, old);
    let after = write(&replicas[&new_leader].raft, 20, 10).await?;
    assert_contiguous(&after.offsets, end);
    assert_eq!(
        lock_log(&replicas[&old].log).high_watermark(),
        end,
        "the cut-off leader's uncommitted suffix is not visible to consumers"
    );
    router.heal();
    for p in pending {
        // The old leader's proposals fail (it lost leadership); none was acknowledged.
        assert!(p.await?.is_err(), "an uncommitted write was acknowledged");
    }
    for r in replicas.values() {
        applied(&r.raft, after.last_index).await?;
    }
    let logs: Vec<_> = replicas.values().map(stored).collect::<Result<_, _>>()?;
    assert_eq!(logs[0].len(), 30);
    assert!(
        logs.iter().all(|l| *l == logs[0]),
        "the deposed leader's divergent suffix was truncated"
    );

    // A follower restarted from its data directory rejoins and catches up.
    let follower = *others
        .iter()
        .find(|id| **id != new_leader)
        .ok_or("a follower")?;
    let stopped = replicas.remove(&follower).ok_or("follower")?;
    stopped.raft.shutdown().await?;
    router.remove(follower);
    let dir = stopped.dir.clone();
    drop(stopped);
    let more = write(&replicas[&new_leader].raft, 30, 5).await?;
    assert_contiguous(&more.offsets, after.end_offset());
    let restarted = start_replica(follower, &dir, &router).await?;
    applied(&restarted.raft, more.last_index).await?;
    replicas.insert(follower, restarted);
    let logs: Vec<_> = replicas.values().map(stored).collect::<Result<_, _>>()?;
    assert_eq!(logs[0].len(), 35);
    assert!(
        logs.iter().all(|l| *l == logs[0]),
        "identical after restart"
    );
    for r in replicas.values() {
        r.raft.shutdown().await?;
    }
    Ok(())
}
