//! The reconciler: keeps this broker's topics and partition replicas (with their Raft groups)
//! equal to the controller's metadata image.

use super::TOPIC_ID_FILE;
use crate::broker::{now_ms, Broker};
use crate::error::BrokerError;
use crate::internal_topic::follow_leadership;
use crate::partition::Partition;
use crate::topics::{partition_dir_name, Topic, CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};
use chronik_replication::controller::TopicImage;
use chronik_replication::node::ReplicationNode;
use chronik_replication::transport::GroupId;
use chronik_replication::SharedLog;
use chronik_storage::checkpoint::{self, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use chronik_storage::{PartitionLog, StorageError};
use chronik_types::TopicPartition;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Keeps the broker's topics equal to the controller's image, for as long as the node runs.
pub async fn run_reconciler(broker: Arc<Broker>, node: Arc<ReplicationNode>) {
    let mut changes = node.image_changes();
    let mut caught_up = node.caught_up_changes();
    loop {
        // Read before reconciling: the image reconciled then holds what it promises.
        let complete = node.metadata_caught_up();
        match reconcile(&broker, &node).await {
            Ok(()) if complete => broker.set_metadata_ready(),
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, "applying cluster metadata to this broker failed")
            }
        }
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            r = caught_up.changed() => if r.is_err() { return },
        }
    }
}

async fn reconcile(broker: &Arc<Broker>, node: &ReplicationNode) -> Result<(), BrokerError> {
    let wanted: BTreeMap<String, TopicImage> = node.with_image(|i| i.topics.clone());
    let dir = broker.config.data_dir.clone();
    let recovery_points = checkpoint::read(&dir.join(RECOVERY_POINT_FILE))?;
    let log_starts = checkpoint::read(&dir.join(LOG_START_OFFSET_FILE))?;
    for (name, image) in &wanted {
        let current = broker.topic(name);
        let same_id = current
            .as_ref()
            .is_some_and(|t| t.record.topic_id == image.record.topic_id);
        let mut partitions = if same_id {
            current
                .as_ref()
                .map_or_else(Vec::new, |t| t.partitions.clone())
        } else {
            if let Some(old) = &current {
                close_topic(broker, node, old).await;
            }
            Vec::new()
        };
        let log_config = broker.log_config_for(&image.record.configs);
        let unchanged = same_id
            && current.as_ref().is_some_and(|t| {
                t.record.configs == image.record.configs
                    && t.log_config == log_config
                    && usize::try_from(t.record.partitions).ok() == Some(image.assignments.len())
            });
        if unchanged {
            continue;
        }
        for p in &partitions {
            p.with_log(|l| l.set_config(log_config.clone()));
        }
        // Partitions already open stay; new ones (a new topic, or CreatePartitions) are opened
        // if this node holds one of their replicas.
        let known = current
            .as_ref()
            .filter(|_| same_id)
            .map_or(0, |t| usize::try_from(t.record.partitions).unwrap_or(0));
        for (index, replicas) in image.assignments.iter().enumerate().skip(known) {
            let p = i32::try_from(index).unwrap_or(i32::MAX);
            let tp = TopicPartition::new(name.clone(), p);
            if !replicas.contains(&node.node_id) {
                // Hosted by its replicas only; Metadata here reports the leader they announce.
                continue;
            }
            let pdir = dir.join(partition_dir_name(name, p));
            prepare_partition_dir(&pdir, image.record.topic_id)?;
            let (log, _) = PartitionLog::open_on(
                Arc::clone(&broker.config.fs),
                &pdir,
                log_config.clone(),
                recovery_points.get(&tp).copied().unwrap_or(0),
                log_starts.get(&tp).copied().unwrap_or(0),
                now_ms(),
            )?;
            let log: SharedLog = Arc::new(Mutex::new(log));
            let raft = node
                .open_partition(
                    GroupId::new(name.clone(), p),
                    replicas,
                    Arc::clone(&log),
                    &pdir,
                    Arc::clone(&broker.data_arrived),
                )
                .await?;
            let part = Arc::new(Partition::replicated(tp, log, raft));
            if name == CONSUMER_OFFSETS_TOPIC {
                // The leader of an offsets partition coordinates its groups.
                tokio::spawn(follow_leadership(
                    Arc::clone(&broker.groups),
                    Arc::clone(&part),
                ));
            }
            if name == TRANSACTION_STATE_TOPIC {
                // The leader of a transaction state partition coordinates its transactions.
                tokio::spawn(follow_leadership(
                    Arc::clone(&broker.txns),
                    Arc::clone(&part),
                ));
            }
            partitions.push(part);
        }
        broker.install_topic(Topic {
            record: image.record.clone(),
            log_config,
            partitions,
        });
        tracing::info!(topic = %name, partitions = image.assignments.len(), "serving topic");
    }
    for t in broker.all_topics() {
        if !wanted.contains_key(&t.record.name) {
            broker.uninstall_topic(&t.record.name);
            close_topic(broker, node, &t).await;
            tracing::info!(topic = %t.record.name, "deleted topic");
        }
    }
    broker.topics_changed.notify_waiters();
    Ok(())
}

/// Stops a topic's groups and removes its data.
async fn close_topic(broker: &Broker, node: &ReplicationNode, topic: &Topic) {
    for p in &topic.partitions {
        node.close_partition(&GroupId::new(p.tp.topic.clone(), p.tp.partition))
            .await;
        let dir = p.with_log(|log| {
            log.mark_offline();
            log.dir().to_path_buf()
        });
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(path = %dir.display(), error = %e, "could not remove a deleted topic's directory");
        }
    }
    broker.data_arrived.notify_waiters();
}

/// Makes `dir` hold data of topic `id` only: data of an older topic of the same name goes.
fn prepare_partition_dir(dir: &Path, id: uuid::Uuid) -> Result<(), StorageError> {
    let id_file = dir.join(TOPIC_ID_FILE);
    let stored = std::fs::read_to_string(&id_file).ok();
    if stored.as_deref().map(str::trim) == Some(id.to_string().as_str()) {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
    chronik_storage::fsutil::write_atomic(&id_file, id.to_string().as_bytes())
}
