//! Identifiers shared across layers.

use std::fmt;

/// A Kafka offset: the position of a record in a partition log.
pub type Offset = i64;

/// A broker's node id (`--node-id`).
pub type NodeId = i32;

/// A topic name plus a partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The partition of an internal topic (`__consumer_offsets`, `__transaction_state`) that holds
/// `key` (a group id or a transactional id): Kafka's `abs(key.hashCode) % partitions`.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in key.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (h & 0x7fff_ffff) % partitions.max(1)
}
