//! `ClusterImage`: the cluster's metadata as of some point of the controller log — brokers,
//! topics with their replica sets, the next producer id. Pure: `apply` is deterministic, so
//! every node that applies the same records holds the same image.

use super::records::{MetadataOutcome, MetadataRecord, RejectReason};
use crate::types::NodeId;
use chronik_storage::dynamic_config_store::DynamicConfigs;
use chronik_storage::topic_store::TopicRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub host: String,
    pub port: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub record: TopicRecord,
    /// Replica set of each partition; the first replica is the preferred leader.
    pub assignments: Vec<Vec<NodeId>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterImage {
    pub brokers: BTreeMap<NodeId, BrokerInfo>,
    pub topics: BTreeMap<String, TopicImage>,
    /// Producer ids below this were handed out.
    pub next_producer_id: i64,
    /// Dynamic broker and group configs.
    #[serde(default)]
    pub dynamic_configs: DynamicConfigs,
}

impl ClusterImage {
    pub fn apply(&mut self, record: &MetadataRecord) -> MetadataOutcome {
        match record {
            MetadataRecord::RegisterBroker {
                node_id,
                host,
                port,
            } => {
                self.brokers.insert(
                    *node_id,
                    BrokerInfo {
                        host: host.clone(),
                        port: *port,
                    },
                );
                MetadataOutcome::Applied
            }
            MetadataRecord::CreateTopic { topic, assignments } => {
                if self.topics.contains_key(&topic.name) {
                    return MetadataOutcome::Rejected(RejectReason::TopicAlreadyExists);
                }
                if usize::try_from(topic.partitions).ok() != Some(assignments.len()) {
                    return MetadataOutcome::Rejected(RejectReason::InvalidPartitions);
                }
                self.topics.insert(
                    topic.name.clone(),
                    TopicImage {
                        record: topic.clone(),
                        assignments: assignments.clone(),
                    },
                );
                MetadataOutcome::Applied
            }
            MetadataRecord::DeleteTopic { name } => match self.topics.remove(name) {
                Some(_) => MetadataOutcome::Applied,
                None => MetadataOutcome::Rejected(RejectReason::UnknownTopic),
            },
            MetadataRecord::CreatePartitions { name, assignments } => {
                match self.topics.get_mut(name) {
                    None => MetadataOutcome::Rejected(RejectReason::UnknownTopic),
                    Some(t) => {
                        t.assignments.extend(assignments.iter().cloned());
                        t.record.partitions =
                            i32::try_from(t.assignments.len()).unwrap_or(i32::MAX);
                        MetadataOutcome::Applied
                    }
                }
            }
            MetadataRecord::AlterTopicConfigs { name, configs } => {
                match self.topics.get_mut(name) {
                    None => MetadataOutcome::Rejected(RejectReason::UnknownTopic),
                    Some(t) => {
                        t.record.configs = configs.clone();
                        MetadataOutcome::Applied
                    }
                }
            }
            MetadataRecord::AlterDynamicConfigs {
                resource,
                name,
                previous,
                configs,
            } => {
                if self.dynamic_configs.get(*resource, name) != *previous {
                    return MetadataOutcome::Rejected(RejectReason::Conflict);
                }
                self.dynamic_configs.set(*resource, name, configs.clone());
                MetadataOutcome::Applied
            }
            MetadataRecord::AllocateProducerIds { count, .. } => {
                let first = self.next_producer_id;
                self.next_producer_id = first.saturating_add((*count).max(1));
                MetadataOutcome::ProducerIds { first }
            }
        }
    }

    /// The replica set of a partition.
    pub fn replicas(&self, topic: &str, partition: i32) -> Option<&[NodeId]> {
        let t = self.topics.get(topic)?;
        t.assignments
            .get(usize::try_from(partition).ok()?)
            .map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, partitions: i32) -> TopicRecord {
        TopicRecord {
            name: name.into(),
            topic_id: uuid::Uuid::nil(),
            partitions,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn a_dynamic_config_change_applies_only_over_the_value_it_was_computed_from() {
        use chronik_storage::dynamic_config_store::DynamicResource;
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        let change = |previous, configs| MetadataRecord::AlterDynamicConfigs {
            resource: DynamicResource::Broker,
            name: String::new(),
            previous,
            configs,
        };
        let mut image = ClusterImage::default();
        let a = one("log.retention.ms", "1000");
        assert_eq!(
            image.apply(&change(BTreeMap::new(), a.clone())),
            MetadataOutcome::Applied
        );
        // Computed from the empty value too, but the first change came in between.
        assert_eq!(
            image.apply(&change(BTreeMap::new(), one("background.threads", "9"))),
            MetadataOutcome::Rejected(RejectReason::Conflict)
        );
        assert_eq!(image.dynamic_configs.get(DynamicResource::Broker, ""), a);
    }

    #[test]
    fn records_apply_deterministically() {
        let records = vec![
            MetadataRecord::RegisterBroker {
                node_id: 1,
                host: "h".into(),
                port: 9092,
            },
            MetadataRecord::CreateTopic {
                topic: topic("a", 2),
                assignments: vec![vec![1], vec![1]],
            },
            MetadataRecord::CreateTopic {
                topic: topic("a", 1),
                assignments: vec![vec![1]],
            },
            MetadataRecord::CreatePartitions {
                name: "a".into(),
                assignments: vec![vec![1]],
            },
            MetadataRecord::AllocateProducerIds {
                node_id: 1,
                count: 1000,
            },
            MetadataRecord::AllocateProducerIds {
                node_id: 1,
                count: 1000,
            },
            MetadataRecord::DeleteTopic { name: "b".into() },
        ];
        let mut image = ClusterImage::default();
        let outcomes: Vec<_> = records.iter().map(|r| image.apply(r)).collect();
        assert_eq!(
            outcomes,
            vec![
                MetadataOutcome::Applied,
                MetadataOutcome::Applied,
                MetadataOutcome::Rejected(RejectReason::TopicAlreadyExists),
                MetadataOutcome::Applied,
                MetadataOutcome::ProducerIds { first: 0 },
                MetadataOutcome::ProducerIds { first: 1000 },
                MetadataOutcome::Rejected(RejectReason::UnknownTopic),
            ]
        );
        assert_eq!(image.topics["a"].record.partitions, 3);
        assert_eq!(image.replicas("a", 2), Some(&[1u64][..]));
        let mut again = ClusterImage::default();
        for r in &records {
            again.apply(r);
        }
        assert_eq!(again, image);
    }
}
