//! A partition's Raft group of three replicas, in one process over an in-memory network, each
//! replica on its own real partition log: election, replication with contiguous offsets,
//! identical logs, leader failover, truncation of a deposed leader's uncommitted suffix, and a
//! replica restarted from its data directory catching up.

mod common;

use bytes::Bytes;
use chronik_replication::replica_log::lock_log;
use chronik_replication::types::{NodeId, Raft};
use chronik_replication::{Applied, RecordBatch};
use chronik_storage::batch_builder::uncompressed_batch;
use common::{start_replica, Replica, Router, TestResult};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const WAIT: Option<Duration> = Some(Duration::from_secs(20));

fn batch(i: usize) -> RecordBatch {
    RecordBatch(Bytes::from(uncompressed_batch(
        1 + (i % 3) as i32,
        1_700_000_000_000 + i as i64,
        format!("value-{i}").as_bytes(),
    )))
}

async fn leader_of(rafts: &[&Raft]) -> Result<NodeId, Box<dyn std::error::Error + Send + Sync>> {
    let m = rafts[0]
        .wait(WAIT)
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await?;
    let leader = m.current_leader.ok_or("no leader")?;
    for r in rafts {
        r.wait(WAIT)
            .metrics(
                |m| m.current_leader == Some(leader),
                "all agree on the leader",
            )
            .await?;
    }
    Ok(leader)
}

/// Writes `n` batches through the leader; returns their (base, last) offsets.
async fn write(
    leader: &Raft,
    from: usize,
    n: usize,
) -> Result<Vec<(i64, i64)>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out = Vec::new();
    for i in from..from + n {
        let resp = leader.client_write(batch(i)).await?;
        match resp.data {
            Applied::Batch {
                base_offset,
                last_offset,
            } => out.push((base_offset, last_offset)),
            Applied::RaftOnly => return Err("a batch applied as a Raft-only entry".into()),
        }
    }
    Ok(out)
}

/// Every stored batch of a replica's log below its log end, with its bytes.
fn stored(r: &Replica) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error + Send + Sync>> {
    let log = lock_log(&r.log);
    let mut out = Vec::new();
    for loc in log.batch_locations()? {
        out.push(log.read_batch_at(loc.base_offset)?);
    }
    Ok(out)
}

fn assert_contiguous(offsets: &[(i64, i64)], start: i64) {
    let mut next = start;
    for (base, last) in offsets {
        assert_eq!(*base, next, "offsets are contiguous: {offsets:?}");
        next = last + 1;
    }
}

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
    assert_contiguous(&first, 0);
    let end = first.last().map_or(0, |o| o.1 + 1);
    for r in replicas.values() {
        r.raft
            .wait(WAIT)
            .metrics(
                |m| m.last_applied == replicas[&leader].raft.metrics().borrow().last_applied,
                "follower applied everything",
            )
            .await?;
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
    assert_contiguous(&after, end);
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
    let target = replicas[&new_leader].raft.metrics().borrow().last_applied;
    for r in replicas.values() {
        r.raft
            .wait(WAIT)
            .metrics(|m| m.last_applied >= target, "caught up after healing")
            .await?;
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
    assert_contiguous(&more, after.last().map_or(0, |o| o.1 + 1));
    let restarted = start_replica(follower, &dir, &router).await?;
    let target = replicas[&new_leader].raft.metrics().borrow().last_applied;
    restarted
        .raft
        .wait(WAIT)
        .metrics(|m| m.last_applied >= target, "restarted replica caught up")
        .await?;
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
