//! `__consumer_offsets`: group records as Kafka records (key and value bytes) in uncompressed
//! record batches, one batch per partition per operation; and reading them back at start-up.

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::partition::Partition;
use crate::topics::Topic;
use bytes::{Bytes, BytesMut};
use chronik_group::records::partition_for;
use chronik_group::GroupRecord;
use chronik_storage::log::read_batches;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::collections::BTreeMap;

/// Kafka's `offsets.topic.num.partitions` default.
pub const OFFSETS_TOPIC_PARTITIONS: i32 = 50;
/// Bytes read per step while loading a partition.
const LOAD_READ_BYTES: usize = 1024 * 1024;

/// Encodes records of one partition as one record batch. (The encoder starts a new batch
/// whenever `offset - sequence` changes, so each record's sequence follows its offset from the
/// batch's base sequence -1: one batch, as a replicated log needs one per entry.)
pub fn encode_batch(records: &[&GroupRecord], now_ms: i64) -> Result<Vec<u8>, BrokerError> {
    let kafka_records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).unwrap_or(0),
            sequence: i32::try_from(i).unwrap_or(0) - 1,
            timestamp: now_ms,
            key: Some(Bytes::from(r.encode_key())),
            value: r.encode_value().map(Bytes::from),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        kafka_records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| BrokerError::InvalidRequest(format!("cannot encode group records: {e}")))?;
    Ok(buf.to_vec())
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

/// Reads every group record stored in `__consumer_offsets`, in log order per partition.
pub fn load_all(topic: Option<&Topic>) -> Result<Vec<GroupRecord>, BrokerError> {
    let Some(topic) = topic else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for p in &topic.partitions {
        out.extend(load_partition(p)?);
    }
    Ok(out)
}

/// Reads the group records of one `__consumer_offsets` partition up to its high watermark.
pub fn load_partition(p: &Partition) -> Result<Vec<GroupRecord>, BrokerError> {
    let mut out = Vec::new();
    let (mut offset, hw, _) = Broker::offsets(p);
    while offset < hw {
        let Some(slice) = p.with_log(|l| l.read_slice(offset))? else {
            break;
        };
        let data = read_batches(&slice, hw, LOAD_READ_BYTES, true)?;
        if data.is_empty() {
            break;
        }
        let mut bytes = Bytes::from(data);
        while !bytes.is_empty() {
            let set = RecordBatchDecoder::decode(&mut bytes)
                .map_err(|e| BrokerError::InvalidRequest(format!("{}: {e}", p.tp)))?;
            for rec in set.records {
                offset = offset.max(rec.offset + 1);
                let Some(key) = rec.key else { continue };
                match GroupRecord::decode(&key, rec.value.as_deref()) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        tracing::warn!(partition = %p.tp, offset = rec.offset, error = %e, "skipping unreadable group record")
                    }
                }
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
        let encoded = encode_batch(&refs, 1_000).unwrap_or_default();
        let batches = batch::split_and_validate(&encoded).unwrap_or_default();
        assert_eq!(batches.len(), 1, "one batch for the whole operation");
        let (_, h) = batches[0];
        assert_eq!(
            (h.records_count, h.producer_id, h.base_sequence),
            (3, -1, -1)
        );
    }
}
