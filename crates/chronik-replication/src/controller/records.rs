//! Metadata records: the entries of the controller's Raft log (`__cluster_metadata`), each the
//! JSON value of the one record of a record batch, as KRaft keeps metadata records in a log.

use crate::types::NodeId;
use chronik_storage::batch_builder;
use chronik_storage::dynamic_config_store::DynamicResource;
use chronik_storage::topic_store::TopicRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One change to the cluster's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A node announces (or updates) the address Kafka clients reach it at.
    RegisterBroker {
        node_id: NodeId,
        host: String,
        port: i32,
    },
    /// A topic with its partitions' replica sets (the first replica is the preferred leader).
    CreateTopic {
        topic: TopicRecord,
        assignments: Vec<Vec<NodeId>>,
    },
    DeleteTopic {
        name: String,
    },
    /// Partitions added to a topic: the replica sets of the new ones.
    CreatePartitions {
        name: String,
        assignments: Vec<Vec<NodeId>>,
    },
    /// Replaces a topic's config overrides.
    AlterTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    /// Replaces the dynamic config overrides of a broker (by id, or `""` for the cluster-wide
    /// default) or of a group; an empty map removes them. Applied only if the resource's
    /// overrides are still `previous` (what the change was computed from), so that concurrent
    /// changes made through different nodes never overwrite one another unseen.
    AlterDynamicConfigs {
        resource: DynamicResource,
        name: String,
        previous: BTreeMap<String, String>,
        configs: BTreeMap<String, String>,
    },
    /// Hands a node a block of `count` producer ids, never handed out before.
    AllocateProducerIds {
        node_id: NodeId,
        count: i64,
    },
}

/// What applying a record did, answered to whoever proposed it (the same on every node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataOutcome {
    Applied,
    /// The first id of the block handed out.
    ProducerIds {
        first: i64,
    },
    /// Not applied, and why (the topic exists, does not exist, ...).
    Rejected(RejectReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    TopicAlreadyExists,
    UnknownTopic,
    InvalidPartitions,
    /// A conditional change whose condition no longer held (recompute and propose again).
    Conflict,
}

/// The record batch carrying `record` (one record, its JSON as the value).
pub fn to_batch(record: &MetadataRecord, now_ms: i64) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_vec(record)?;
    Ok(batch_builder::uncompressed_batch(1, now_ms, &value))
}

/// The record a controller batch carries.
pub fn from_batch(batch: &[u8]) -> Result<MetadataRecord, String> {
    let values = batch_builder::record_values(batch).ok_or("unreadable metadata batch")?;
    let [value] = values.as_slice() else {
        return Err(format!(
            "a metadata batch holds {} records, not one",
            values.len()
        ));
    };
    serde_json::from_slice(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden bytes: docs/formats/cluster-metadata.md shows this record's value.
    #[test]
    fn golden_value_and_batch_round_trip() {
        let rec = MetadataRecord::RegisterBroker {
            node_id: 2,
            host: "127.0.0.1".into(),
            port: 9093,
        };
        let json = serde_json::to_string(&rec).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"RegisterBroker":{"node_id":2,"host":"127.0.0.1","port":9093}}"#
        );
        let batch = to_batch(&rec, 5).unwrap_or_default();
        assert_eq!(from_batch(&batch), Ok(rec));
    }

    /// Golden bytes of the dynamic-config record (docs/formats/cluster-metadata.md).
    #[test]
    fn golden_alter_dynamic_configs() {
        let rec = MetadataRecord::AlterDynamicConfigs {
            resource: DynamicResource::Broker,
            name: String::new(),
            previous: BTreeMap::new(),
            configs: BTreeMap::from([("log.retention.ms".to_string(), "3600000".to_string())]),
        };
        let json = serde_json::to_string(&rec).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"AlterDynamicConfigs":{"resource":"Broker","name":"","previous":{},"configs":{"log.retention.ms":"3600000"}}}"#
        );
        let batch = to_batch(&rec, 5).unwrap_or_default();
        assert_eq!(from_batch(&batch), Ok(rec));
    }
}
