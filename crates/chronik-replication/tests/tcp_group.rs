//! A partition group of three replicas over the real peer transport (TCP on 127.0.0.1): the
//! group forms, replicates, fails over when the leader's node goes away, and the node that
//! returns on the same address catches up.

mod common;

use chronik_replication::groups::RaftGroups;
use chronik_replication::transport::{serve, GroupId, GroupNetwork, Peers};
use chronik_replication::types::{NodeId, Raft};
use common::{
    applied, assert_contiguous, leader_of, start_replica_on, stored, write, Replica, TestResult,
    WAIT,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

struct Node {
    replica: Replica,
    server: JoinHandle<()>,
}

async fn start_node(
    id: NodeId,
    dir: &Path,
    listener: TcpListener,
    addrs: &BTreeMap<NodeId, String>,
) -> Result<Node, Box<dyn std::error::Error + Send + Sync>> {
    let group = GroupId::new("orders", 0);
    let peers = Arc::new(Peers::new(id, addrs));
    let replica = start_replica_on(id, dir, GroupNetwork::new(group.clone(), peers)).await?;
    let groups = Arc::new(RaftGroups::new(id));
    groups.insert(group, replica.raft.clone());
    let server = tokio::spawn(serve(listener, id, groups));
    Ok(Node { replica, server })
}

async fn stop_node(
    node: Node,
) -> Result<std::path::PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    node.server.abort();
    let _ = node.server.await;
    node.replica.raft.shutdown().await?;
    Ok(node.replica.dir.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_over_tcp_forms_replicates_and_fails_over() -> TestResult {
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let mut listeners = BTreeMap::new();
    let mut addrs = BTreeMap::new();
    for id in 1..=3u64 {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        addrs.insert(id, l.local_addr()?.to_string());
        listeners.insert(id, l);
    }
    let mut nodes = BTreeMap::new();
    for (i, (id, l)) in listeners.into_iter().enumerate() {
        nodes.insert(id, start_node(id, dirs[i].path(), l, &addrs).await?);
    }
    let members: BTreeSet<NodeId> = nodes.keys().copied().collect();
    nodes[&1].replica.raft.initialize(members).await?;
    let rafts: Vec<&Raft> = nodes.values().map(|n| &n.replica.raft).collect();
    let leader = leader_of(&rafts).await?;
    let first = write(&nodes[&leader].replica.raft, 0, 30).await?;
    assert_contiguous(&first.offsets, 0);

    // The leader's node goes away (listener closed, Raft stopped): the other two elect a
    // leader and keep accepting writes at the next offset.
    let old = nodes.remove(&leader).ok_or("leader node")?;
    let old_dir = stop_node(old).await?;
    let rest: Vec<&Raft> = nodes.values().map(|n| &n.replica.raft).collect();
    let new_leader = rest[0]
        .wait(WAIT)
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != leader),
            "a new leader",
        )
        .await?
        .current_leader
        .ok_or("no leader")?;
    let after = write(&nodes[&new_leader].replica.raft, 30, 10).await?;
    assert_contiguous(&after.offsets, first.end_offset());

    // It comes back on the same address with its data and catches up.
    let listener = TcpListener::bind(&addrs[&leader]).await?;
    let back = start_node(leader, &old_dir, listener, &addrs).await?;
    applied(&back.replica.raft, after.last_index).await?;
    nodes.insert(leader, back);
    let logs: Vec<_> = nodes
        .values()
        .map(|n| stored(&n.replica))
        .collect::<Result<_, _>>()?;
    assert_eq!(logs[0].len(), 40);
    assert!(
        logs.iter().all(|l| *l == logs[0]),
        "replica logs are identical"
    );
    for (_, n) in nodes {
        stop_node(n).await?;
    }
    Ok(())
}
