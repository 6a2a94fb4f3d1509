//! Broker-level configuration (what the server's command line feeds in).

use std::path::PathBuf;

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
                "default.replication.factor",
                self.default_replication_factor.to_string(),
            ),
            ("delete.topic.enable", self.delete_topic_enable.to_string()),
            ("log.dirs", self.data_dir.display().to_string()),
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
                "socket.request.max.bytes",
                chronik_types::limits::FRAME_BYTES_MAX.to_string(),
            ),
        ]
    }
}
