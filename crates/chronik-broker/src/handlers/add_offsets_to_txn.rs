//! AddOffsetsToTxn (key 25): the group's `__consumer_offsets` partition joins the producer's
//! open transaction, so its TxnOffsetCommit offsets are committed or dropped with it.

use crate::broker::Broker;
use crate::error::{fenced_for_version, NONE};
use crate::groups::OFFSETS_TOPIC_PARTITIONS;
use crate::topics::CONSUMER_OFFSETS_TOPIC;
use chronik_types::ids::partition_for;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use std::sync::Arc;

/// Version 2+ knows PRODUCER_FENCED; older versions get INVALID_PRODUCER_EPOCH.
const PRODUCER_FENCED_VERSION: i16 = 2;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let transactional_id = req.transactional_id.0.to_string();
    if let Some(c) = broker.txns.coordinator_error(broker, &transactional_id) {
        return AddOffsetsToTxnResponse::default().with_error_code(c);
    }
    if let Err(e) = broker.groups.ensure_offsets_topic(broker) {
        return AddOffsetsToTxnResponse::default().with_error_code(e.code());
    }
    let partition = (
        CONSUMER_OFFSETS_TOPIC.to_string(),
        partition_for(req.group_id.0.as_str(), OFFSETS_TOPIC_PARTITIONS),
    );
    let producer = (req.producer_id.0, req.producer_epoch);
    let result = broker
        .txns
        .add_partitions(broker, &transactional_id, producer, &[partition])
        .await;
    AddOffsetsToTxnResponse::default().with_error_code(match result {
        Ok(()) => NONE,
        Err(e) => fenced_for_version(e.code(), version >= PRODUCER_FENCED_VERSION),
    })
}
