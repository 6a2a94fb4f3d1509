//! The controller group of three nodes over TCP: it forms whatever the start order, every
//! broker registers, a record proposed on any node (forwarded to the leader) reaches every
//! node's image once, and a controller leader's loss does not lose metadata.

mod common;

use chronik_replication::controller::{MetadataOutcome, MetadataRecord, RejectReason};
use chronik_replication::node::{NodeConfig, ReplicationNode};
use chronik_replication::types::NodeId;
use chronik_storage::topic_store::TopicRecord;
use common::TestResult;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

async fn wait_image(
    node: &ReplicationNode,
    what: &str,
    f: impl Fn(&chronik_replication::controller::ClusterImage) -> bool,
) -> TestResult {
    let mut changes = node.image_changes();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !node.with_image(&f) {
            if changes.changed().await.is_err() {
                break;
            }
        }
    })
    .await
    .map_err(|_| format!("node {}: timed out waiting for {what}", node.node_id))?;
    Ok(())
}

fn topic(name: &str) -> TopicRecord {
    TopicRecord {
        name: name.into(),
        topic_id: uuid::Uuid::new_v4(),
        partitions: 1,
        configs: BTreeMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_controllers_agree_on_metadata() -> TestResult {
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let mut listeners = BTreeMap::new();
    let mut voters = BTreeMap::new();
    for id in 1..=3u64 {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        voters.insert(id, l.local_addr()?.to_string());
        listeners.insert(id, l);
    }
    // Nodes start in reverse order.
    let mut nodes: BTreeMap<NodeId, Arc<ReplicationNode>> = BTreeMap::new();
    for (id, l) in listeners.into_iter().rev() {
        let config = NodeConfig {
            node_id: id,
            data_dir: dirs[id as usize - 1].path().to_path_buf(),
            voters: voters.clone(),
            kafka_host: "127.0.0.1".into(),
            kafka_port: 9000 + id as i32,
            fs: chronik_storage::fs::real(),
        };
        nodes.insert(id, ReplicationNode::start(config, l).await?);
    }
    for n in nodes.values() {
        wait_image(n, "three brokers", |i| i.brokers.len() == 3).await?;
    }
    let leader = nodes[&1]
        .controller_leader()
        .ok_or("no controller leader")?;
    let follower = *nodes.keys().find(|id| **id != leader).ok_or("a follower")?;
    let create = MetadataRecord::CreateTopic {
        topic: topic("orders"),
        assignments: vec![vec![1, 2, 3]],
    };
    assert_eq!(
        nodes[&follower].propose(create.clone()).await?,
        MetadataOutcome::Applied
    );
    assert!(
        nodes[&follower].with_image(|i| i.topics.contains_key("orders")),
        "the proposer's image has the topic when propose returns"
    );
    assert_eq!(
        nodes[&leader].propose(create).await?,
        MetadataOutcome::Rejected(RejectReason::TopicAlreadyExists)
    );
    for n in nodes.values() {
        wait_image(n, "the topic", |i| i.topics.contains_key("orders")).await?;
    }
    // The controller leader goes away: the others elect one and keep the metadata.
    let gone = nodes.remove(&leader).ok_or("leader")?;
    gone.shutdown().await?;
    let survivor = nodes.values().next().ok_or("a survivor")?.clone();
    let outcome = survivor
        .propose(MetadataRecord::AllocateProducerIds {
            node_id: survivor.node_id,
            count: 1000,
        })
        .await?;
    assert!(matches!(outcome, MetadataOutcome::ProducerIds { .. }));
    assert!(survivor.with_image(|i| i.topics.contains_key("orders") && i.brokers.len() == 3));
    for n in nodes.values() {
        n.shutdown().await?;
    }
    Ok(())
}
