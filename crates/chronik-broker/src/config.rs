//! Broker-level configuration (what the server's command line feeds in).

use chronik_storage::fs::FileSystem;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub data_dir: PathBuf,
    /// Host and port given to clients in Metadata.
    pub advertised_host: String,
    pub advertised_port: i32,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics with -1.
    pub num_partitions: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// `offsets.retention.minutes`.
    pub offsets_retention_minutes: i64,
    /// `auto.leader.rebalance.enable`: hand partitions back to their preferred leaders.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`, in ms.
    pub leader_imbalance_check_interval_ms: u64,
    /// `log.retention.check.interval.ms`.
    pub log_retention_check_interval_ms: u64,
    /// The file layer under partition logs (the fault-injecting one in tests).
    pub fs: Arc<dyn FileSystem>,
}

impl BrokerConfig {
    pub fn new(
        node_id: i32,
        data_dir: PathBuf,
        advertised_host: String,
        advertised_port: i32,
    ) -> Self {
        Self {
            node_id,
            data_dir,
            advertised_host,
            advertised_port,
            num_partitions: 1,
            auto_create_topics_enable: true,
            default_replication_factor: 1,
            delete_topic_enable: true,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            offsets_retention_minutes: 7 * 24 * 60,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_ms: 300_000,
            log_retention_check_interval_ms: chronik_types::limits::RETENTION_CHECK_INTERVAL_MS,
            fs: chronik_storage::fs::real(),
        }
    }

    /// The group coordinator's settings.
    pub fn coordinator_config(&self) -> chronik_group::CoordinatorConfig {
        chronik_group::CoordinatorConfig {
            min_session_timeout_ms: self.group_min_session_timeout_ms,
            max_session_timeout_ms: self.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: self.group_initial_rebalance_delay_ms,
            offsets_retention_ms: self.offsets_retention_minutes.saturating_mul(60_000),
            offset_metadata_max_bytes: 4096,
            offsets_retention_check_interval_ms: 600_000,
            member_id_seed: format!("{:x}", crate::broker::now_ms()),
        }
    }

    /// Broker configs reported by DescribeConfigs, with Kafka's names.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "advertised.listeners",
                format!(
                    "PLAINTEXT://{}:{}",
                    self.advertised_host, self.advertised_port
                ),
            ),
            (
                "auto.create.topics.enable",
                self.auto_create_topics_enable.to_string(),
            ),
            (
                "auto.leader.rebalance.enable",
                self.auto_leader_rebalance_enable.to_string(),
            ),
            (
                "default.replication.factor",
                self.default_replication_factor.to_string(),
            ),
            ("delete.topic.enable", self.delete_topic_enable.to_string()),
            (
                "group.initial.rebalance.delay.ms",
                self.group_initial_rebalance_delay_ms.to_string(),
            ),
            (
                "group.max.session.timeout.ms",
                self.group_max_session_timeout_ms.to_string(),
            ),
            (
                "group.min.session.timeout.ms",
                self.group_min_session_timeout_ms.to_string(),
            ),
            (
                "leader.imbalance.check.interval.seconds",
                (self.leader_imbalance_check_interval_ms / 1000).to_string(),
            ),
            ("log.dirs", self.data_dir.display().to_string()),
            (
                "log.retention.check.interval.ms",
                self.log_retention_check_interval_ms.to_string(),
            ),
            (
                "log.retention.ms",
                chronik_types::limits::RETENTION_MS_DEFAULT.to_string(),
            ),
            (
                "log.segment.bytes",
                chronik_types::limits::SEGMENT_BYTES_DEFAULT.to_string(),
            ),
            (
                "message.max.bytes",
                chronik_types::limits::MESSAGE_BYTES_DEFAULT.to_string(),
            ),
            ("min.insync.replicas", "1".to_string()),
            ("node.id", self.node_id.to_string()),
            ("num.partitions", self.num_partitions.to_string()),
            (
                "offsets.retention.minutes",
                self.offsets_retention_minutes.to_string(),
            ),
            (
                "offsets.topic.num.partitions",
                crate::groups::OFFSETS_TOPIC_PARTITIONS.to_string(),
            ),
            (
                "socket.request.max.bytes",
                chronik_types::limits::FRAME_BYTES_MAX.to_string(),
            ),
        ]
    }
}
