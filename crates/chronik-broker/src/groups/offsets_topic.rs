//! `__consumer_offsets`: group records as Kafka records (key and value bytes) in uncompressed
//! record batches, one batch per partition per operation (`internal_topic`); and reading them
//! back at start-up, with transactional offset commits and their markers.

use crate::error::BrokerError;
use crate::internal_topic::{self, KeyValue};
use crate::partition::Partition;
use chronik_group::records::partition_for;
use chronik_group::GroupRecord;
use std::collections::BTreeMap;

/// Kafka's `offsets.topic.num.partitions` default.
pub const OFFSETS_TOPIC_PARTITIONS: i32 = 50;

/// Encodes records of one partition as one record batch; with `producer`, inside that
/// producer's transaction (TxnOffsetCommit).
pub fn encode_batch(
    records: &[&GroupRecord],
    producer: Option<(i64, i16)>,
    now_ms: i64,
) -> Result<Vec<u8>, BrokerError> {
    let kvs: Vec<KeyValue> = records
        .iter()
        .map(|r| (r.encode_key(), r.encode_value()))
        .collect();
    internal_topic::encode_batch(&kvs, producer, now_ms)
}

/// Groups records by the `__consumer_offsets` partition of their group.
pub fn by_partition(records: &[GroupRecord]) -> BTreeMap<i32, Vec<&GroupRecord>> {
    let mut out: BTreeMap<i32, Vec<&GroupRecord>> = BTreeMap::new();
    for r in records {
        out.entry(partition_for(r.group_id(), OFFSETS_TOPIC_PARTITIONS))
            .or_default()
            .push(r);
    }
    out
}

/// One entry of a `__consumer_offsets` partition, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// A group record in effect once stored.
    Record(GroupRecord),
    /// An offset committed inside `producer_id`'s transaction.
    Pending {
        producer_id: i64,
        record: GroupRecord,
    },
    /// `producer_id`'s transaction ended here, in `__consumer_offsets` partition `partition`.
    Marker {
        producer_id: i64,
        commit: bool,
        partition: i32,
    },
}

/// Reads the entries of one `__consumer_offsets` partition up to its high watermark.
pub fn load_partition(p: &Partition) -> Result<Vec<Loaded>, BrokerError> {
    let mut out = Vec::new();
    for rec in internal_topic::read_partition(p)? {
        if rec.control {
            if let Some(commit) = internal_topic::control_commit(rec.key.as_deref()) {
                out.push(Loaded::Marker {
                    producer_id: rec.producer_id,
                    commit,
                    partition: p.tp.partition,
                });
            }
            continue;
        }
        let Some(key) = rec.key else { continue };
        match GroupRecord::decode(&key, rec.value.as_deref()) {
            Ok(r) if rec.transactional => out.push(Loaded::Pending {
                producer_id: rec.producer_id,
                record: r,
            }),
            Ok(r) => out.push(Loaded::Record(r)),
            Err(e) => {
                tracing::warn!(partition = %p.tp, offset = rec.offset, error = %e, "skipping unreadable group record")
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronik_storage::batch;

    #[test]
    fn group_records_of_a_partition_are_one_batch() {
        let records: Vec<GroupRecord> = (0..3)
            .map(|p| GroupRecord::Offset {
                group_id: "g".into(),
                topic: "t".into(),
                partition: p,
                value: None,
            })
            .collect();
        let refs: Vec<&GroupRecord> = records.iter().collect();
        let encoded = encode_batch(&refs, None, 1_000).unwrap_or_default();
        let batches = batch::split_and_validate(&encoded).unwrap_or_default();
        assert_eq!(batches.len(), 1, "one batch for the whole operation");
        let (_, h) = batches[0];
        assert_eq!(
            (h.records_count, h.producer_id, h.base_sequence),
            (3, -1, -1)
        );
    }
}
