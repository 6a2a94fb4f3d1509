//! TxnOffsetCommit (key 28): offsets committed inside a transaction. Sent to the group's
//! coordinator; stored in `__consumer_offsets` as part of the producer's transaction and in
//! effect only once its COMMIT marker is written there.

use super::offset_commit::{collect_offsets, slot_code};
use crate::broker::Broker;
use crate::error::{code, fenced_for_version};
use crate::groups::OFFSETS_TOPIC_PARTITIONS;
use crate::topics::CONSUMER_OFFSETS_TOPIC;
use crate::txn::Verification;
use chronik_group::OffsetCommitRequest;
use chronik_types::ids::partition_for;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use std::sync::Arc;

/// Version 2+ knows PRODUCER_FENCED; older versions get INVALID_PRODUCER_EPOCH.
const PRODUCER_FENCED_VERSION: i16 = 2;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let (entries, slots) = collect_offsets(
        broker,
        req.topics.iter().map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.committed_metadata.as_ref().map(|m| m.as_str()),
                    )
                })
                .collect();
            (t.name.0.as_str(), partitions)
        }),
    );
    let request = OffsetCommitRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        offsets: entries,
    };
    let producer = (req.producer_id.0, req.producer_epoch);
    // KIP-890 part 1: the group's offsets partition must be in the producer's open transaction
    // (AddOffsetsToTxn), checked when this node also coordinates the transactional id.
    let offsets_partition = partition_for(&request.group_id, OFFSETS_TOPIC_PARTITIONS);
    let verification = broker.txns.verify(
        broker,
        req.transactional_id.0.as_str(),
        producer,
        CONSUMER_OFFSETS_TOPIC,
        offsets_partition,
    );
    let codes = if let Some(c) = broker.groups.coordinator_error(broker, &request.group_id) {
        vec![c; request.offsets.len()]
    } else if verification == Verification::NotInTransaction {
        vec![code(ResponseError::InvalidTxnState); request.offsets.len()]
    } else if request.offsets.is_empty() {
        Vec::new()
    } else {
        broker
            .groups
            .commit_txn_offsets(broker, &request, producer)
            .await
            .into_iter()
            .map(|c| fenced_for_version(c, version >= PRODUCER_FENCED_VERSION))
            .collect()
    };
    let mut topics: Vec<TxnOffsetCommitResponseTopic> = req
        .topics
        .iter()
        .map(|t| TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()))
        .collect();
    for (ti, partition, entry) in slots {
        if let Some(t) = topics.get_mut(ti) {
            t.partitions.push(
                TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(partition)
                    .with_error_code(slot_code(entry, true, &codes)),
            );
        }
    }
    TxnOffsetCommitResponse::default().with_topics(topics)
}
