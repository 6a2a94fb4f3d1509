//! The mechanism preferred-leader rebalancing relies on (chronik-broker's `preferred_leader`):
//! a leader stops sending heartbeats, and once `handover_elect_delay` has passed the preferred
//! replica is asked to campaign (what `PeerRequest::ElectNow` does on a node). It is elected,
//! each time, also right after it restarted.

mod common;

use chronik_replication::config::handover_elect_delay;
use chronik_replication::types::{NodeId, Raft};
use common::{applied, leader_of, start_replica, write, Replica, Router, TestResult};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const HANDOVER_MAX: Option<Duration> = Some(Duration::from_secs(10));

async fn settle(replicas: &[Replica]) -> Result<NodeId, Box<dyn std::error::Error + Send + Sync>> {
    let rafts: Vec<&Raft> = replicas.iter().map(|r| &r.raft).collect();
    leader_of(&rafts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_heartbeats_is_replaced_by_the_preferred_replica() -> TestResult {
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let router = Router::default();
    let mut replicas = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        replicas.push(start_replica(i as NodeId + 1, dir.path(), &router).await?);
    }
    let members: BTreeSet<NodeId> = [1, 2, 3].into();
    replicas[0].raft.initialize(members).await?;
    settle(&replicas).await?;

    let mut next = 0;
    for round in 0..4 {
        // Move the leadership away from replica 1 (the preferred one): stop it, let 2 and 3
        // elect, write, start it again from its data directory (as a node restart does).
        let old = router.remove(1).ok_or("replica 1 is not up")?;
        old.shutdown().await?;
        let leader = replicas[1]
            .raft
            .wait(HANDOVER_MAX)
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != 1),
                "a leader other than 1",
            )
            .await?
            .current_leader
            .ok_or("no leader")?;
        let written = write(&replicas[(leader - 1) as usize].raft, next, 10).await?;
        next += 10;
        replicas[0] = start_replica(1, dirs[0].path(), &router).await?;
        for r in &replicas {
            applied(&r.raft, written.last_index).await?;
        }
        let leader = settle(&replicas).await?;
        assert_ne!(leader, 1, "round {round}");

        let started = Instant::now();
        replicas[(leader - 1) as usize]
            .raft
            .runtime_config()
            .heartbeat(false);
        tokio::time::sleep(handover_elect_delay(3)).await;
        replicas[0].raft.trigger().elect().await?;
        let elected = replicas[0]
            .raft
            .wait(HANDOVER_MAX)
            .metrics(|m| m.state.is_leader(), "replica 1 to lead")
            .await;
        replicas[(leader - 1) as usize]
            .raft
            .runtime_config()
            .heartbeat(true);
        let m = elected?;
        println!(
            "round {round}: leader {leader} -> 1 in {:?} (term {})",
            started.elapsed(),
            m.current_term
        );
        assert_eq!(settle(&replicas).await?, 1);
    }
    Ok(())
}
