//! `Broker`: the state every handler works on — topics and their logs, the group-commit
//! flusher, fetch sessions — plus start-up recovery, checkpoints, retention and shutdown.

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::fetch_session::FetchSessionCache;
use crate::group_commit::GroupCommit;
use crate::groups::GroupService;
use crate::partition::Partition;
use crate::producer_ids::ProducerIdManager;
use crate::topics::{self, partition_dir_name, Topic};
use crate::txn::TxnService;
use chronik_replication::node::ReplicationNode;
use chronik_storage::checkpoint::{self, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use chronik_storage::config::LogConfig;
use chronik_storage::dynamic_config_store::{self, DynamicConfigs};
use chronik_storage::topic_store::{self, TopicRecord};
use chronik_storage::{meta, PartitionLog, StorageError};
use chronik_types::{Offset, TopicPartition};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serializes topic creation, deletion and changes, and the writes of `topics.json`.
    admin: Mutex<()>,
    pub group_commit: GroupCommit,
    /// Notified whenever a high watermark may have moved (wakes long-polling fetches).
    pub data_arrived: Arc<Notify>,
    pub fetch_sessions: Mutex<FetchSessionCache>,
    pub groups: Arc<GroupService>,
    pub txns: Arc<TxnService>,
    pub producer_ids: ProducerIdManager,
    shutting_down: AtomicBool,
    /// Cluster mode: this node's replication (controller, partition groups).
    pub cluster: Option<Arc<ReplicationNode>>,
    /// Notified after the reconciler applied a metadata change (cluster mode).
    pub topics_changed: Notify,
    /// Whether this broker's topics are complete: always on a single node; in a cluster once
    /// the reconciler applied an image holding everything committed before the node started.
    /// Until then a topic this broker does not know may exist.
    metadata_ready: tokio::sync::watch::Sender<bool>,
    /// Cluster mode: the rest of the producer-id block the controller gave this node.
    cluster_producer_ids: Mutex<(i64, i64)>,
    /// Single node: the dynamic broker and group configs (a cluster's are in the controller's
    /// image).
    pub(crate) dynamic: RwLock<DynamicConfigs>,
}

/// Broker ids as the controller's node ids (checked by `Broker::is_broker` first).
fn to_node_ids(sets: &[Vec<i32>]) -> Vec<Vec<u64>> {
    sets.iter()
        .map(|s| s.iter().filter_map(|b| u64::try_from(*b).ok()).collect())
        .collect()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Broker {
    /// Opens the data directory: identity, topics, and every partition log (with recovery).
    /// Must run inside a tokio runtime (it starts the flusher).
    pub fn open(config: BrokerConfig) -> Result<Arc<Self>, StorageError> {
        let dir = config.data_dir.clone();
        let meta = meta::load_or_init(&dir, config.node_id)?;
        let records = topic_store::load(&dir)?;
        let dynamic = dynamic_config_store::load(&dir)?;
        let recovery_points = checkpoint::read(&dir.join(RECOVERY_POINT_FILE))?;
        let log_starts = checkpoint::read(&dir.join(LOG_START_OFFSET_FILE))?;
        remove_orphan_partition_dirs(&dir, &records)?;
        let now = now_ms();
        let mut topics = BTreeMap::new();
        for record in records.into_values() {
            let log_config =
                crate::dynamic_configs::topic_log_config(&dynamic, config.node_id, &record.configs);
            let mut partitions = Vec::new();
            for p in 0..record.partitions {
                let tp = TopicPartition::new(record.name.clone(), p);
                let rp = recovery_points.get(&tp).copied().unwrap_or(0);
                let ls = log_starts.get(&tp).copied().unwrap_or(0);
                let pdir = dir.join(partition_dir_name(&record.name, p));
                let (log, report) = PartitionLog::open_on(
                    Arc::clone(&config.fs),
                    &pdir,
                    log_config.clone(),
                    rp,
                    ls,
                    now,
                )?;
                if let Some((path, valid, why)) = &report.truncated {
                    tracing::warn!(partition = %tp, path = %path.display(), valid_bytes = valid, reason = ?why,
                        log_end_offset = report.log_end_offset, "recovery truncated the log");
                }
                for path in &report.deleted_segments {
                    tracing::warn!(partition = %tp, path = %path.display(), "recovery removed a segment after a corrupt one");
                }
                partitions.push(Arc::new(Partition::new(tp, log)));
            }
            topics.insert(
                record.name.clone(),
                Arc::new(Topic {
                    record,
                    log_config,
                    partitions,
                }),
            );
        }
        let groups = GroupService::load(
            config.coordinator_config(),
            topics
                .get(topics::CONSUMER_OFFSETS_TOPIC)
                .map(|t: &Arc<Topic>| t.as_ref()),
            now,
        )
        .map_err(|e| StorageError::Corrupt {
            path: dir.join(topics::CONSUMER_OFFSETS_TOPIC),
            reason: e.to_string(),
        })?;
        let txns = TxnService::load(
            chronik_txn::CoordinatorConfig::default(),
            topics
                .get(topics::TRANSACTION_STATE_TOPIC)
                .map(|t: &Arc<Topic>| t.as_ref()),
        )
        .map_err(|e| StorageError::Corrupt {
            path: dir.join(topics::TRANSACTION_STATE_TOPIC),
            reason: e.to_string(),
        })?;
        let broker = Self::assemble(
            config,
            meta.cluster_id,
            (topics, dynamic),
            (groups, txns),
            None,
        )?;
        broker.write_checkpoints()?;
        Ok(broker)
    }

    /// Opens the broker of a cluster node: topics come from the controller's image (see
    /// `cluster::run_reconciler`, which this starts). Consumer groups are not replicated yet.
    pub fn open_cluster(
        config: BrokerConfig,
        node: Arc<ReplicationNode>,
    ) -> Result<Arc<Self>, StorageError> {
        let dir = config.data_dir.clone();
        meta::load_or_init(&dir, config.node_id)?;
        let groups =
            GroupService::load(config.coordinator_config(), None, now_ms()).map_err(|e| {
                StorageError::Corrupt {
                    path: dir.clone(),
                    reason: e.to_string(),
                }
            })?;
        let txns =
            TxnService::load(chronik_txn::CoordinatorConfig::default(), None).map_err(|e| {
                StorageError::Corrupt {
                    path: dir.clone(),
                    reason: e.to_string(),
                }
            })?;
        let ids: Vec<String> = node.voters().iter().map(u64::to_string).collect();
        let cluster_id = format!("chronik-{}", ids.join("-"));
        let broker = Self::assemble(
            config,
            cluster_id,
            (BTreeMap::new(), DynamicConfigs::default()),
            (groups, txns),
            Some(Arc::clone(&node)),
        )?;
        node.groups
            .set_marker_writer(Arc::new(crate::txn::markers::BrokerMarkerWriter(
                Arc::downgrade(&broker),
            )));
        tokio::spawn(crate::cluster::run_reconciler(Arc::clone(&broker), node));
        Ok(broker)
    }

    fn assemble(
        config: BrokerConfig,
        cluster_id: String,
        (topics, dynamic): (BTreeMap<String, Arc<Topic>>, DynamicConfigs),
        (groups, txns): (GroupService, TxnService),
        cluster: Option<Arc<ReplicationNode>>,
    ) -> Result<Arc<Self>, StorageError> {
        let data_arrived = Arc::new(Notify::new());
        let single_node = cluster.is_none();
        let producer_ids = ProducerIdManager::open(&config.data_dir)?;
        Ok(Arc::new(Self {
            config,
            cluster_id,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            group_commit: GroupCommit::start(Arc::clone(&data_arrived)),
            data_arrived,
            fetch_sessions: Mutex::new(FetchSessionCache::default()),
            groups: Arc::new(groups),
            txns: Arc::new(txns),
            producer_ids,
            shutting_down: AtomicBool::new(false),
            cluster,
            topics_changed: Notify::new(),
            metadata_ready: tokio::sync::watch::Sender::new(single_node),
            cluster_producer_ids: Mutex::new((0, 0)),
            dynamic: RwLock::new(dynamic),
        }))
    }

    /// Serves `topic` (cluster reconciler).
    pub(crate) fn install_topic(&self, topic: Topic) {
        self.topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.record.name.clone(), Arc::new(topic));
    }

    /// Stops serving a topic (cluster reconciler).
    pub(crate) fn uninstall_topic(&self, name: &str) {
        self.topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    pub(crate) fn take_cluster_producer_id(&self) -> Option<i64> {
        let mut block = self
            .cluster_producer_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (block.0 < block.1).then(|| {
            block.0 += 1;
            block.0 - 1
        })
    }

    pub(crate) fn refill_cluster_producer_ids(&self, next: i64, end: i64) {
        *self
            .cluster_producer_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (next, end);
    }

    /// A producer id never handed out before (in a cluster: from a controller block).
    pub fn allocate_producer_id(&self) -> Result<i64, BrokerError> {
        match &self.cluster {
            Some(node) => self.allocate_producer_id_in_cluster(node),
            None => Ok(self.producer_ids.allocate()?),
        }
    }

    /// See the field `metadata_ready`.
    pub fn metadata_ready(&self) -> bool {
        *self.metadata_ready.borrow()
    }

    /// A receiver that changes when `metadata_ready` turns true.
    pub fn metadata_ready_changes(&self) -> tokio::sync::watch::Receiver<bool> {
        self.metadata_ready.subscribe()
    }

    /// Marks this broker's topics complete (cluster reconciler).
    pub(crate) fn set_metadata_ready(&self) {
        self.metadata_ready
            .send_if_modified(|ready| !std::mem::replace(ready, true));
    }

    /// The error for a topic this broker does not know: UNKNOWN_TOPIC_OR_PARTITION, or
    /// NOT_LEADER_OR_FOLLOWER (retriable, the client refreshes its metadata) while this
    /// broker's topics may be incomplete.
    pub fn unknown_topic_error(&self) -> BrokerError {
        if self.metadata_ready() {
            BrokerError::UnknownTopicOrPartition
        } else {
            BrokerError::NotLeaderOrFollower
        }
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .find(|t| t.record.topic_id == id)
            .cloned()
    }

    pub fn all_topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    pub fn partition(&self, topic: &str, index: i32) -> Result<Arc<Partition>, BrokerError> {
        let t = self
            .topic(topic)
            .ok_or_else(|| self.unknown_topic_error())?;
        match t.partition(index) {
            Some(p) => Ok(Arc::clone(p)),
            // A partition of the topic that another node hosts (cluster mode), as Kafka answers
            // for a partition the broker has no replica of.
            None if t.has_partition(index) => Err(BrokerError::NotLeaderOrFollower),
            None => Err(BrokerError::UnknownTopicOrPartition),
        }
    }

    pub(crate) fn lock_admin(&self) -> std::sync::MutexGuard<'_, ()> {
        self.admin.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn store_topics(&self, topics: &BTreeMap<String, Arc<Topic>>) -> Result<(), StorageError> {
        let records = topics
            .iter()
            .map(|(k, t)| (k.clone(), t.record.clone()))
            .collect();
        topic_store::store(&self.config.data_dir, &records)
    }

    /// Checks a topic creation without doing it (CreateTopics `validate_only`, and step one of create).
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), BrokerError> {
        topics::validate_topic_name(name)?;
        if self.topic(name).is_some() {
            return Err(BrokerError::TopicAlreadyExists(name.to_string()));
        }
        topics::validate_partition_count(partitions)?;
        match &self.cluster {
            Some(node) => {
                crate::cluster::replication_factor(node, replication_factor)?;
            }
            None => topics::validate_replication_factor(replication_factor, 1)?,
        }
        topics::validate_configs(configs)
    }

    /// Creates a topic: partition directories first, then the durable record, then it is served.
    /// Creates a topic whose replica sets a client gave (CreateTopics `assignments`, already in
    /// partition order).
    pub fn create_topic_assigned(
        &self,
        name: &str,
        assignments: &[Vec<i32>],
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Option<Arc<Topic>>, BrokerError> {
        topics::validate_replica_assignment(assignments, None, |b| self.is_broker(b))?;
        let partitions = i32::try_from(assignments.len()).unwrap_or(i32::MAX);
        let rf = assignments
            .first()
            .map_or(1, |a| i16::try_from(a.len()).unwrap_or(i16::MAX));
        self.validate_new_topic(name, partitions, rf, &configs)?;
        if validate_only {
            return Ok(None);
        }
        let Some(node) = &self.cluster else {
            return self.create_topic(name, partitions, rf, configs).map(Some);
        };
        let record = TopicRecord {
            name: name.to_string(),
            topic_id: uuid::Uuid::new_v4(),
            partitions,
            configs,
        };
        self.create_topic_in_cluster(node, record, rf, Some(to_node_ids(assignments)))
            .map(Some)
    }

    /// Whether `id` is one of the brokers (this node, or a voter of its cluster).
    pub fn is_broker(&self, id: i32) -> bool {
        match &self.cluster {
            Some(node) => u64::try_from(id).is_ok_and(|id| node.voters().contains(&id)),
            None => id == self.config.node_id,
        }
    }

    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, BrokerError> {
        if let Some(node) = &self.cluster {
            // The controller serializes topic changes; no local lock is held while it works
            // (blocking this worker on a proposal while holding one would stall the others).
            self.validate_new_topic(name, partitions, replication_factor, &configs)?;
            let record = TopicRecord {
                name: name.to_string(),
                topic_id: uuid::Uuid::new_v4(),
                partitions,
                configs,
            };
            return self.create_topic_in_cluster(node, record, replication_factor, None);
        }
        let _admin = self.lock_admin();
        self.validate_new_topic(name, partitions, replication_factor, &configs)?;
        let record = TopicRecord {
            name: name.to_string(),
            topic_id: uuid::Uuid::new_v4(),
            partitions,
            configs,
        };
        let log_config = self.log_config_for(&record.configs);
        let parts = self.open_partitions(&record, &log_config, 0)?;
        let topic = Arc::new(Topic {
            record,
            log_config,
            partitions: parts,
        });
        let mut map = self
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        map.insert(name.to_string(), Arc::clone(&topic));
        self.store_topics(&map)?;
        *self.topics.write().unwrap_or_else(PoisonError::into_inner) = map;
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    fn open_partitions(
        &self,
        record: &TopicRecord,
        cfg: &LogConfig,
        from: i32,
    ) -> Result<Vec<Arc<Partition>>, BrokerError> {
        let mut parts = Vec::new();
        for p in from..record.partitions {
            let dir = self
                .config
                .data_dir
                .join(partition_dir_name(&record.name, p));
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
            }
            let (log, _) = PartitionLog::open_on(
                Arc::clone(&self.config.fs),
                &dir,
                cfg.clone(),
                0,
                0,
                now_ms(),
            )?;
            parts.push(Arc::new(Partition::new(
                TopicPartition::new(record.name.clone(), p),
                log,
            )));
        }
        chronik_storage::fsutil::sync_dir(&self.config.data_dir)?;
        Ok(parts)
    }

    /// Creates a topic on first use if `auto.create.topics.enable` allows it.
    pub fn auto_create(&self, name: &str) -> Result<Option<Arc<Topic>>, BrokerError> {
        if let Some(t) = self.topic(name) {
            return Ok(Some(t));
        }
        if !self.config.auto_create_topics_enable {
            return Ok(None);
        }
        let rf = if self.cluster.is_some() { -1 } else { 1 };
        match self.create_topic(name, self.config.num_partitions, rf, BTreeMap::new()) {
            Ok(t) => Ok(Some(t)),
            Err(BrokerError::TopicAlreadyExists(_)) => Ok(self.topic(name)),
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic: the durable record first, then its files.
    pub fn delete_topic(&self, name: &str) -> Result<uuid::Uuid, BrokerError> {
        if let Some(node) = &self.cluster {
            return self.delete_topic_in_cluster(node, name);
        }
        let _admin = self.lock_admin();
        let mut map = self
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let topic = map
            .remove(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        self.store_topics(&map)?;
        *self.topics.write().unwrap_or_else(PoisonError::into_inner) = map;
        for p in &topic.partitions {
            let dir = p.with_log(|log| {
                log.mark_offline();
                log.dir().to_path_buf()
            });
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(path = %dir.display(), error = %e, "could not remove deleted topic's directory");
            }
        }
        self.data_arrived.notify_waiters();
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.record.topic_id)
    }

    /// Raises a topic's partition count.
    /// Grows a topic to `count` partitions; the new ones get `assignments` (a client's replica
    /// sets) or are spread over the brokers.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        // In a cluster the controller serializes changes: no local lock across the proposal.
        let _admin = self.cluster.is_none().then(|| self.lock_admin());
        let topic = self
            .topic(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let current = topic.record.partitions;
        if count <= current {
            return Err(BrokerError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        topics::validate_partition_count(count)?;
        let explicit = match &assignments {
            None => None,
            Some(sets) => {
                if i32::try_from(sets.len()).ok() != Some(count - current) {
                    return Err(BrokerError::InvalidReplicaAssignment(format!(
                        "Increasing the number of partitions by {} but {} assignments provided.",
                        count - current,
                        sets.len()
                    )));
                }
                let rf = match &self.cluster {
                    Some(node) => node
                        .with_image(|i| i.replicas(name, 0).map(<[u64]>::len))
                        .unwrap_or(1),
                    None => 1,
                };
                topics::validate_replica_assignment(sets, Some(rf), |b| self.is_broker(b))?;
                Some(to_node_ids(sets))
            }
        };
        if validate_only {
            return Ok(());
        }
        if let Some(node) = &self.cluster {
            return self.create_partitions_in_cluster(node, name, (current, count), explicit);
        }
        let mut record = topic.record.clone();
        record.partitions = count;
        let mut partitions = topic.partitions.clone();
        partitions.extend(self.open_partitions(&record, &topic.log_config, current)?);
        self.replace_topic(Topic {
            record,
            log_config: topic.log_config.clone(),
            partitions,
        })
    }

    /// Replaces a topic's config overrides.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), BrokerError> {
        let _admin = self.cluster.is_none().then(|| self.lock_admin());
        topics::validate_configs(&configs)?;
        let topic = self
            .topic(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        if let Some(node) = &self.cluster {
            return self.set_topic_configs_in_cluster(node, name, configs);
        }
        let mut record = topic.record.clone();
        record.configs = configs;
        let log_config = self.log_config_for(&record.configs);
        for p in &topic.partitions {
            p.with_log(|log| log.set_config(log_config.clone()));
        }
        self.replace_topic(Topic {
            record,
            log_config,
            partitions: topic.partitions.clone(),
        })
    }

    fn replace_topic(&self, topic: Topic) -> Result<(), BrokerError> {
        let mut map = self
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        map.insert(topic.record.name.clone(), Arc::new(topic));
        self.store_topics(&map)?;
        *self.topics.write().unwrap_or_else(PoisonError::into_inner) = map;
        Ok(())
    }

    /// Writes the recovery-point and log-start-offset checkpoints.
    pub fn write_checkpoints(&self) -> Result<(), StorageError> {
        if let Some(node) = &self.cluster {
            node.checkpoint()?; // every Raft group's commit point
        }
        let mut recovery = BTreeMap::new();
        let mut starts = BTreeMap::new();
        for t in self.all_topics() {
            for p in &t.partitions {
                let (hw, ls) = p.with_log(|log| (log.high_watermark(), log.log_start_offset()));
                recovery.insert(p.tp.clone(), hw);
                starts.insert(p.tp.clone(), ls);
            }
        }
        let dir = &self.config.data_dir;
        checkpoint::write(&dir.join(RECOVERY_POINT_FILE), &recovery)?;
        checkpoint::write(&dir.join(LOG_START_OFFSET_FILE), &starts)
    }

    /// Applies retention to every log; returns the number of segments deleted.
    pub fn apply_retention(&self) -> usize {
        let now = now_ms();
        let mut deleted = 0;
        for t in self.all_topics() {
            // Replicated logs: `ReplicationNode::apply_retention` (their Raft group purges
            // first).
            for p in t.partitions.iter().filter(|p| p.raft().is_none()) {
                match p.with_log(|log| log.apply_retention(now)) {
                    Ok(n) => deleted += n,
                    Err(e) => tracing::warn!(partition = %p.tp, error = %e, "retention failed"),
                }
            }
        }
        deleted
    }

    /// Compacts every log whose topic has `cleanup.policy=compact` and new closed segments.
    /// The rewrite runs without the partition's lock; only the swap takes it, so produce goes on.
    pub fn compact_logs(&self) -> usize {
        let now = now_ms();
        let mut swapped = 0;
        for t in self.all_topics() {
            if !t.log_config.cleanup_compact {
                continue;
            }
            for p in t.partitions.iter().filter(|p| p.raft().is_none()) {
                let Some(input) = p.with_log(|log| log.compaction_input(now)) else {
                    continue;
                };
                let result = chronik_storage::cleaner::clean(&input).and_then(|cleaned| {
                    p.with_log(|log| log.install_cleaned(&input, cleaned, now))
                });
                match result {
                    Ok(n) => swapped += n,
                    Err(e) => tracing::warn!(partition = %p.tp, error = %e, "compaction failed"),
                }
            }
        }
        swapped
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.data_arrived.notify_waiters();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Flushes every log and writes the checkpoints (clean shutdown).
    pub fn flush_all(&self) -> Result<(), StorageError> {
        for t in self.all_topics() {
            for p in &t.partitions {
                p.with_log(PartitionLog::flush_all)?;
            }
        }
        self.write_checkpoints()
    }

    /// True while every log is online (readiness).
    pub fn all_logs_online(&self) -> bool {
        self.all_topics()
            .iter()
            .all(|t| t.partitions.iter().all(|p| !p.with_log(|l| l.is_offline())))
    }

    /// Offsets of one partition: (log start, high watermark, log end).
    pub fn offsets(p: &Partition) -> (Offset, Offset, Offset) {
        p.with_log(|l| (l.log_start_offset(), l.high_watermark(), l.log_end_offset()))
    }
}

/// Removes partition directories whose topic is not in `topics.json` (an interrupted deletion).
fn remove_orphan_partition_dirs(
    dir: &Path,
    records: &BTreeMap<String, TopicRecord>,
) -> Result<(), StorageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        let Some((topic, p)) = topics::parse_partition_dir(&name) else {
            continue;
        };
        let known = records.get(topic).is_some_and(|r| p < r.partitions);
        if !known {
            tracing::warn!(path = %path.display(), "removing partition directory of a deleted topic");
            std::fs::remove_dir_all(&path).map_err(|e| StorageError::io(&path, e))?;
        }
    }
    Ok(())
}
