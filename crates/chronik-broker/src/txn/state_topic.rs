//! `__transaction_state`: transaction records as Kafka records in uncompressed batches, one
//! batch per partition per operation, and reading them back.

use crate::error::BrokerError;
use crate::internal_topic::{self, KeyValue};
use crate::partition::Partition;
use chronik_txn::TxnRecord;
use chronik_types::ids::partition_for;
use std::collections::BTreeMap;

/// Kafka's `transaction.state.log.num.partitions` default.
pub const TXN_STATE_PARTITIONS: i32 = 50;

/// The `__transaction_state` partition of a transactional id.
pub fn partition_of(transactional_id: &str) -> i32 {
    partition_for(transactional_id, TXN_STATE_PARTITIONS)
}

/// Encodes records by partition, one batch each.
pub fn batches(records: &[TxnRecord], now_ms: i64) -> Result<Vec<(i32, Vec<u8>)>, BrokerError> {
    let mut by: BTreeMap<i32, Vec<KeyValue>> = BTreeMap::new();
    for r in records {
        by.entry(partition_of(&r.transactional_id))
            .or_default()
            .push((r.encode_key(), r.encode_value()));
    }
    by.into_iter()
        .map(|(p, kvs)| Ok((p, internal_topic::encode_batch(&kvs, None, now_ms)?)))
        .collect()
}

/// The records of one `__transaction_state` partition up to its high watermark.
pub fn load_partition(p: &Partition) -> Result<Vec<TxnRecord>, BrokerError> {
    let mut out = Vec::new();
    for rec in internal_topic::read_partition(p)? {
        let Some(key) = rec.key else { continue };
        match TxnRecord::decode(&key, rec.value.as_deref()) {
            Ok(r) => out.push(r),
            Err(e) => {
                tracing::warn!(partition = %p.tp, offset = rec.offset, error = %e, "skipping unreadable transaction record")
            }
        }
    }
    Ok(out)
}
