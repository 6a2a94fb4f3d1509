//! The topic registry: topics, their partitions and configs, created and deleted durably.

use crate::error::BrokerError;
use crate::partition::Partition;
use chronik_storage::config::{validate_entry, LogConfig};
use chronik_storage::topic_store::TopicRecord;
use chronik_types::limits::{PARTITIONS_PER_TOPIC_MAX, TOPIC_NAME_LENGTH_MAX};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Name of the internal topic holding consumer group state (reserved for the group coordinator).
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";
/// The internal topic holding the transaction coordinator's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Whether `name` is one of the coordinators' internal topics.
pub fn is_internal_topic(name: &str) -> bool {
    name == CONSUMER_OFFSETS_TOPIC || name == TRANSACTION_STATE_TOPIC
}

/// A topic as the broker serves it. Immutable: a change replaces the whole value.
#[derive(Debug)]
pub struct Topic {
    pub record: TopicRecord,
    pub log_config: LogConfig,
    /// The partitions hosted by this broker, in index order: all of them on a single node, this
    /// node's replicas in a cluster (`record.partitions` is the topic's partition count).
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    /// Partition `index` if this broker hosts it.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        self.partitions
            .binary_search_by_key(&index, |p| p.tp.partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    /// Whether the topic has a partition `index` (hosted here or not).
    pub fn has_partition(&self, index: i32) -> bool {
        (0..self.record.partitions).contains(&index)
    }
    pub fn is_internal(&self) -> bool {
        is_internal_topic(&self.record.name)
    }
}

/// Kafka's topic name rules: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), BrokerError> {
    let invalid = |why: &str| {
        Err(BrokerError::InvalidTopic(format!(
            "Topic name \"{name}\" is illegal, {why}"
        )))
    };
    if name.is_empty() {
        return invalid("it can't be empty");
    }
    if name == "." || name == ".." {
        return invalid("it can't be \".\" or \"..\"");
    }
    if name.len() > TOPIC_NAME_LENGTH_MAX {
        return invalid("it can't be longer than 249 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return invalid("it contains a character other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

pub fn validate_partition_count(n: i32) -> Result<(), BrokerError> {
    if n < 1 {
        return Err(BrokerError::InvalidPartitions(
            "Number of partitions must be larger than 0.".into(),
        ));
    }
    if n > PARTITIONS_PER_TOPIC_MAX {
        return Err(BrokerError::InvalidPartitions(format!(
            "Number of partitions must be at most {PARTITIONS_PER_TOPIC_MAX}."
        )));
    }
    Ok(())
}

/// Checks replica sets given by a client (CreateTopics `assignments`, CreatePartitions
/// `assignments`) as Kafka does: each non-empty, without a broker twice, all of one size (`rf`
/// when the topic has one already), every broker known (`known`).
pub fn validate_replica_assignment(
    sets: &[Vec<i32>],
    rf: Option<usize>,
    known: impl Fn(i32) -> bool,
) -> Result<(), BrokerError> {
    let bad = |why: String| Err(BrokerError::InvalidReplicaAssignment(why));
    let size = rf.or_else(|| sets.first().map(Vec::len)).unwrap_or(0);
    for (i, set) in sets.iter().enumerate() {
        if set.is_empty() {
            return bad(format!(
                "The manual partition assignment of partition {i} is empty."
            ));
        }
        if set.len() != size {
            return bad(format!(
                "The manual partition assignment of partition {i} has {} replicas, not {size}: all partitions must have the same number of replicas.",
                set.len()
            ));
        }
        if let Some(b) = set.iter().find(|b| !known(**b)) {
            return bad(format!(
                "The manual partition assignment includes broker {b}, but no such broker is registered."
            ));
        }
        let mut seen = set.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != set.len() {
            return bad(format!(
                "The manual partition assignment of partition {i} includes a broker twice."
            ));
        }
    }
    Ok(())
}

/// A single node holds one replica of everything.
pub fn validate_replication_factor(rf: i16, brokers: i16) -> Result<(), BrokerError> {
    if rf < 1 {
        return Err(BrokerError::InvalidReplicationFactor(
            "Replication factor must be larger than 0.".into(),
        ));
    }
    if rf > brokers {
        return Err(BrokerError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {brokers} broker(s) are registered."
        )));
    }
    Ok(())
}

pub fn validate_configs(configs: &BTreeMap<String, String>) -> Result<(), BrokerError> {
    for (k, v) in configs {
        validate_entry(k, v)?;
    }
    Ok(())
}

/// Directory name of a partition log, as Kafka names it.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Parses a partition directory name back into topic and partition.
pub fn parse_partition_dir(name: &str) -> Option<(&str, i32)> {
    let (topic, p) = name.rsplit_once('-')?;
    Some((topic, p.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_assignments_are_checked_like_kafka() {
        let known = |b: i32| (1..=3).contains(&b);
        assert!(validate_replica_assignment(&[vec![1, 2], vec![2, 3]], None, known).is_ok());
        assert!(validate_replica_assignment(&[vec![1, 2], vec![2]], None, known).is_err());
        assert!(validate_replica_assignment(&[vec![1, 1]], None, known).is_err());
        assert!(validate_replica_assignment(&[vec![1, 4]], None, known).is_err());
        assert!(validate_replica_assignment(&[vec![]], None, known).is_err());
        assert!(validate_replica_assignment(&[vec![1, 2]], Some(3), known).is_err());
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("has space").is_err());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
    }

    #[test]
    fn partition_dirs_round_trip() {
        assert_eq!(
            parse_partition_dir(&partition_dir_name("a-b", 7)),
            Some(("a-b", 7))
        );
        assert_eq!(parse_partition_dir("nodash"), None);
    }
}
