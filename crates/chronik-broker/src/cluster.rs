//! The broker in a cluster: topics come from the controller's metadata image instead of
//! `topics.json`; the reconciler opens this node's replicas of new partitions (with their Raft
//! groups) and closes those of deleted topics; admin changes are proposed to the controller.

use crate::broker::{now_ms, Broker};
use crate::error::BrokerError;
use crate::partition::{Partition, Role};
use crate::topics::{partition_dir_name, Topic, CONSUMER_OFFSETS_TOPIC};
use chronik_replication::controller::assignment;
use chronik_replication::controller::{MetadataOutcome, MetadataRecord, RejectReason, TopicImage};
use chronik_replication::leadership::Announcement;
use chronik_replication::node::{NodeError, ReplicationNode};
use chronik_replication::transport::GroupId;
use chronik_replication::SharedLog;
use chronik_storage::checkpoint::{self, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use chronik_storage::config::LogConfig;
use chronik_storage::topic_store::TopicRecord;
use chronik_storage::{PartitionLog, StorageError};
use chronik_types::limits::LEADER_HANDOVER_PEER_ANSWERED_WITHIN_MS;
use chronik_types::TopicPartition;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The file in a partition directory naming the topic id the data belongs to, so a topic
/// deleted and created again under the same name never reuses old data.
pub const TOPIC_ID_FILE: &str = "topic-id";

impl From<NodeError> for BrokerError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Storage(s) => BrokerError::Storage(s),
            other => BrokerError::ControllerUnavailable(other.to_string()),
        }
    }
}

/// Runs a metadata proposal from synchronous handler code (admin requests are rare and may
/// wait for the controller).
pub fn propose_blocking(
    node: &ReplicationNode,
    record: MetadataRecord,
) -> Result<MetadataOutcome, BrokerError> {
    let handle = tokio::runtime::Handle::current();
    Ok(tokio::task::block_in_place(|| {
        handle.block_on(node.propose(record))
    })?)
}

fn reject_error(name: &str, reason: RejectReason) -> BrokerError {
    match reason {
        RejectReason::TopicAlreadyExists => BrokerError::TopicAlreadyExists(name.to_string()),
        RejectReason::UnknownTopic => BrokerError::UnknownTopicOrPartition,
        RejectReason::InvalidPartitions => {
            BrokerError::InvalidPartitions("invalid partition assignment".into())
        }
    }
}

fn expect_applied(name: &str, outcome: MetadataOutcome) -> Result<(), BrokerError> {
    match outcome {
        MetadataOutcome::Applied => Ok(()),
        MetadataOutcome::Rejected(r) => Err(reject_error(name, r)),
        other => Err(BrokerError::InvalidRequest(format!(
            "unexpected controller outcome {other:?}"
        ))),
    }
}

/// The replication factor a request asks for (-1: the default), checked against the voters.
pub fn replication_factor(node: &ReplicationNode, requested: i16) -> Result<usize, BrokerError> {
    let voters = node.voters().len();
    if requested == -1 {
        return Ok(assignment::default_replication_factor(voters));
    }
    crate::topics::validate_replication_factor(
        requested,
        i16::try_from(voters).unwrap_or(i16::MAX),
    )?;
    Ok(usize::try_from(requested).unwrap_or(1))
}

impl Broker {
    /// Cluster mode: creates a topic through the controller and waits until this node serves it.
    pub(crate) fn create_topic_in_cluster(
        &self,
        node: &ReplicationNode,
        record: TopicRecord,
        requested_rf: i16,
    ) -> Result<Arc<Topic>, BrokerError> {
        let rf = replication_factor(node, requested_rf)?;
        let brokers: Vec<u64> = node.voters().iter().copied().collect();
        let assignments = assignment::assign(&record.name, &brokers, 0, record.partitions, rf);
        let name = record.name.clone();
        let outcome = propose_blocking(
            node,
            MetadataRecord::CreateTopic {
                topic: record,
                assignments,
            },
        )?;
        expect_applied(&name, outcome)?;
        self.wait_reconciled(|b| b.topic(&name).is_some())?;
        self.topic(&name)
            .ok_or(BrokerError::UnknownTopicOrPartition)
    }

    pub(crate) fn delete_topic_in_cluster(
        &self,
        node: &ReplicationNode,
        name: &str,
    ) -> Result<uuid::Uuid, BrokerError> {
        let id = self
            .topic(name)
            .map(|t| t.record.topic_id)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let outcome = propose_blocking(
            node,
            MetadataRecord::DeleteTopic {
                name: name.to_string(),
            },
        )?;
        expect_applied(name, outcome)?;
        self.wait_reconciled(|b| b.topic(name).is_none())?;
        Ok(id)
    }

    pub(crate) fn create_partitions_in_cluster(
        &self,
        node: &ReplicationNode,
        name: &str,
        current: i32,
        count: i32,
    ) -> Result<(), BrokerError> {
        let rf = node
            .with_image(|i| i.replicas(name, 0).map(<[u64]>::len))
            .unwrap_or(1);
        let brokers: Vec<u64> = node.voters().iter().copied().collect();
        let assignments = assignment::assign(name, &brokers, current, count - current, rf);
        let outcome = propose_blocking(
            node,
            MetadataRecord::CreatePartitions {
                name: name.to_string(),
                assignments,
            },
        )?;
        expect_applied(name, outcome)?;
        self.wait_reconciled(|b| b.topic(name).is_some_and(|t| t.record.partitions >= count))
    }

    pub(crate) fn set_topic_configs_in_cluster(
        &self,
        node: &ReplicationNode,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), BrokerError> {
        let want = configs.clone();
        let outcome = propose_blocking(
            node,
            MetadataRecord::AlterTopicConfigs {
                name: name.to_string(),
                configs,
            },
        )?;
        expect_applied(name, outcome)?;
        self.wait_reconciled(|b| b.topic(name).is_some_and(|t| t.record.configs == want))
    }

    /// A producer id from a block the controller handed to this node.
    pub(crate) fn allocate_producer_id_in_cluster(
        &self,
        node: &ReplicationNode,
    ) -> Result<i64, BrokerError> {
        const BLOCK: i64 = 1000;
        if let Some(id) = self.take_cluster_producer_id() {
            return Ok(id);
        }
        let outcome = propose_blocking(
            node,
            MetadataRecord::AllocateProducerIds {
                node_id: node.node_id,
                count: BLOCK,
            },
        )?;
        match outcome {
            MetadataOutcome::ProducerIds { first } => {
                self.refill_cluster_producer_ids(first + 1, first + BLOCK);
                Ok(first)
            }
            other => Err(BrokerError::InvalidRequest(format!(
                "unexpected controller outcome {other:?}"
            ))),
        }
    }

    /// Waits (blocking this worker) until the reconciler has made `done` true.
    fn wait_reconciled(&self, done: impl Fn(&Broker) -> bool) -> Result<(), BrokerError> {
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let deadline = tokio::time::Instant::now()
                    + std::time::Duration::from_millis(
                        chronik_replication::node::CONTROLLER_WRITE_TIMEOUT_MS,
                    );
                loop {
                    let changed = self.topics_changed.notified();
                    if done(self) {
                        return Ok(());
                    }
                    if tokio::time::timeout_at(deadline, changed).await.is_err() {
                        return Err(BrokerError::ControllerUnavailable(
                            "the topic change did not reach this broker in time".into(),
                        ));
                    }
                }
            })
        })
    }
}

/// Keeps the broker's topics equal to the controller's image, for as long as the node runs.
pub async fn run_reconciler(broker: Arc<Broker>, node: Arc<ReplicationNode>) {
    let mut changes = node.image_changes();
    loop {
        if let Err(e) = reconcile(&broker, &node).await {
            tracing::error!(error = %e, "applying cluster metadata to this broker failed");
        }
        if changes.changed().await.is_err() {
            return;
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
        let log_config = LogConfig::from_overrides(&image.record.configs);
        let unchanged = same_id
            && current.as_ref().is_some_and(|t| {
                t.record.configs == image.record.configs
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
                tokio::spawn(Arc::clone(&broker.groups).follow_leadership(Arc::clone(&part)));
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

impl Broker {
    /// `GET /cluster`: nodes, the controller leader, and every partition this node hosts with
    /// its leader, epoch, replicas, offsets and (where this node leads) each follower's lag in
    /// Raft entries. `None` on a single node.
    pub fn cluster_status(&self) -> Option<serde_json::Value> {
        let node = self.cluster.as_ref()?;
        let brokers = node.with_image(|i| {
            i.brokers
                .iter()
                .map(|(id, b)| serde_json::json!({"id": id, "host": b.host, "port": b.port}))
                .collect::<Vec<_>>()
        });
        let mut partitions = Vec::new();
        for t in self.all_topics() {
            for p in &t.partitions {
                let (log_start, hw, leo) = Broker::offsets(p);
                let replicas = node
                    .with_image(|i| {
                        i.replicas(&t.record.name, p.tp.partition)
                            .map(<[u64]>::to_vec)
                    })
                    .unwrap_or_default();
                let (leader, epoch, lag) = match p.raft() {
                    Some(raft) => {
                        let m = raft.metrics();
                        let m = m.borrow();
                        let last = m.last_log_index.unwrap_or(0);
                        let lag: serde_json::Map<String, serde_json::Value> = m
                            .replication
                            .as_ref()
                            .map(|rep| {
                                rep.iter()
                                    .filter(|(id, _)| **id != node.node_id)
                                    .map(|(id, matched)| {
                                        let behind = match matched {
                                            Some(l) => last.saturating_sub(l.index),
                                            None => last + 1,
                                        };
                                        (id.to_string(), serde_json::json!(behind))
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        (m.current_leader, m.current_term, lag)
                    }
                    None => (None, 0, serde_json::Map::new()),
                };
                partitions.push(serde_json::json!({
                    "topic": t.record.name,
                    "partition": p.tp.partition,
                    "leader": leader,
                    "leader_epoch": epoch,
                    "replicas": replicas,
                    "log_start_offset": log_start,
                    "high_watermark": hw,
                    "log_end_offset": leo,
                    "follower_lag_entries": lag,
                }));
            }
        }
        Some(serde_json::json!({
            "node_id": node.node_id,
            "voters": node.voters(),
            "controller_leader": node.controller_leader(),
            "brokers": brokers,
            "partitions": partitions,
        }))
    }

    /// Announces the partitions this node leads, with their leader epochs and in-sync
    /// replicas, to every peer: nodes without a replica of a partition answer Metadata from
    /// these announcements (called every second).
    pub fn announce_leadership(&self) {
        let Some(node) = &self.cluster else {
            return;
        };
        let now = now_ms();
        let mut announcements = Vec::new();
        for t in self.all_topics() {
            for p in &t.partitions {
                let Role::Leader { epoch } = p.role() else {
                    continue;
                };
                let replicas = node
                    .with_image(|i| {
                        i.replicas(&t.record.name, p.tp.partition)
                            .map(<[u64]>::to_vec)
                    })
                    .unwrap_or_default();
                announcements.push(Announcement {
                    group: GroupId::new(t.record.name.clone(), p.tp.partition),
                    term: u64::try_from(epoch).unwrap_or(0),
                    isr: p.in_sync_replicas(node.node_id, &replicas, now),
                });
            }
        }
        node.announce_leadership(announcements);
    }

    /// The leader and leader epoch of partition `index` of `topic`: from its Raft group when
    /// this node hosts it, else as its leader announced it (cluster mode).
    pub fn partition_leader(&self, topic: &str, index: i32) -> Option<(u64, i32)> {
        let node = self.cluster.as_ref()?;
        match self.partition(topic, index) {
            Ok(p) => match p.role() {
                Role::Leader { epoch } => Some((node.node_id, epoch)),
                Role::Follower { leader, epoch } => leader.map(|l| (l, epoch)),
                Role::Local => Some((node.node_id, 0)),
            },
            Err(_) => node
                .announced_leader(&GroupId::new(topic, index))
                .map(|a| (a.leader, i32::try_from(a.term).unwrap_or(i32::MAX))),
        }
    }

    /// Preferred-leader rebalancing over every partition this node hosts: ends hand-overs that
    /// are over and, when `may_start` (Kafka's `leader.imbalance.check.interval.seconds` has
    /// passed and `auto.leader.rebalance.enable`), starts new ones. See `preferred_leader`.
    pub fn check_preferred_leaders(&self, may_start: bool) {
        let Some(node) = &self.cluster else {
            return;
        };
        let now = now_ms();
        for t in self.all_topics() {
            for p in &t.partitions {
                let replicas = node
                    .with_image(|i| {
                        i.replicas(&t.record.name, p.tp.partition)
                            .map(<[u64]>::to_vec)
                    })
                    .unwrap_or_default();
                let answering = |peer: u64| {
                    node.peer_answered_within(
                        peer,
                        Duration::from_millis(LEADER_HANDOVER_PEER_ANSWERED_WITHIN_MS),
                    )
                };
                let Some(to) =
                    p.check_preferred_leader(node.node_id, &replicas, answering, now, may_start)
                else {
                    continue;
                };
                let node = Arc::clone(node);
                let group = GroupId::new(t.record.name.clone(), p.tp.partition);
                let delay = chronik_replication::config::handover_elect_delay(replicas.len());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(e) = node.ask_to_elect(to, group.clone()).await {
                        tracing::warn!(%group, to, error = %e, "asking the preferred replica to campaign failed");
                    }
                });
            }
        }
    }

    /// Samples every led partition's in-sync replicas and sets the per-node Raft gauges of
    /// `/metrics` (called every second).
    pub fn record_raft_metrics(&self) {
        let Some(node) = &self.cluster else {
            return;
        };
        let mut leading = 0u64;
        let mut max_lag = 0u64;
        let mut terms = 0u64;
        let now = now_ms();
        for t in self.all_topics() {
            for p in &t.partitions {
                p.sample_isr(now);
                let Some(raft) = p.raft() else { continue };
                let m = raft.metrics();
                let m = m.borrow();
                terms += m.current_term;
                if !m.state.is_leader() {
                    continue;
                }
                leading += 1;
                let last = m.last_log_index.unwrap_or(0);
                if let Some(rep) = &m.replication {
                    for (id, matched) in rep.iter() {
                        if *id != node.node_id {
                            let behind = match matched {
                                Some(l) => last.saturating_sub(l.index),
                                None => last + 1,
                            };
                            max_lag = max_lag.max(behind);
                        }
                    }
                }
            }
        }
        metrics::gauge!("chronik_raft_leader_partitions").set(leading as f64);
        metrics::gauge!("chronik_raft_follower_lag_entries_max").set(max_lag as f64);
        // Each election raises a group's term by one: the sum counts elections so far.
        metrics::gauge!("chronik_raft_terms_sum").set(terms as f64);
        let controller_leader = node.controller_leader().map_or(-1.0, |l| l as f64);
        metrics::gauge!("chronik_raft_controller_leader").set(controller_leader);
    }
}
