//! TxnOffsetCommit (key 28): offsets committed inside a transaction. Sent to the group's
//! coordinator; stored in `__consumer_offsets` as part of the producer's transaction and in
//! effect only once its COMMIT marker is written there.

use super::offset_commit::{collect_offsets, slot_code};
use crate::broker::Broker;
use chronik_group::OffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
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
    let codes = if let Some(c) = broker.groups.coordinator_error(broker, &request.group_id) {
        vec![c; request.offsets.len()]
    } else if request.offsets.is_empty() {
        Vec::new()
    } else {
        let producer = (req.producer_id.0, req.producer_epoch);
        broker
            .groups
            .commit_txn_offsets(broker, &request, producer)
            .await
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
