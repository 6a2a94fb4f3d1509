//! OffsetCommit (key 8): durable before the response.

use crate::broker::Broker;
use crate::error::code;
use chronik_group::{error, OffsetCommitEntry, OffsetCommitRequest};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest as WireRequest, OffsetCommitResponse};
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, req: WireRequest) -> OffsetCommitResponse {
    // Partitions of unknown topics are answered without reaching the coordinator.
    let mut entries = Vec::new();
    let mut slots = Vec::new(); // (topic index, partition, Some(entry index) | None = unknown)
    for (ti, t) in req.topics.iter().enumerate() {
        let topic = broker.topic(t.name.0.as_str());
        for p in &t.partitions {
            let known = topic
                .as_ref()
                .is_some_and(|tp| tp.partition(p.partition_index).is_some());
            if known {
                slots.push((ti, p.partition_index, Some(entries.len())));
                entries.push(OffsetCommitEntry {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                });
            } else {
                slots.push((ti, p.partition_index, None));
            }
        }
    }
    let request = OffsetCommitRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        offsets: entries,
    };
    let not_coordinator = broker.groups.coordinator_error(broker, &request.group_id);
    let (codes, stored) = if let Some(c) = not_coordinator {
        (vec![c; request.offsets.len()], true)
    } else if request.offsets.is_empty() {
        (Vec::new(), true)
    } else {
        broker
            .groups
            .run(broker, |c, now| {
                let (codes, records) = c.commit_offsets(&request, now);
                (
                    codes,
                    chronik_group::Output {
                        records,
                        replies: Vec::new(),
                    },
                )
            })
            .await
    };
    let mut topics: Vec<OffsetCommitResponseTopic> = req
        .topics
        .iter()
        .map(|t| OffsetCommitResponseTopic::default().with_name(t.name.clone()))
        .collect();
    for (ti, partition, entry) in slots {
        let error_code = match entry {
            None => code(ResponseError::UnknownTopicOrPartition),
            Some(_) if !stored => error::COORDINATOR_NOT_AVAILABLE,
            Some(i) => codes.get(i).copied().unwrap_or(error::NONE),
        };
        if let Some(t) = topics.get_mut(ti) {
            t.partitions.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(partition)
                    .with_error_code(error_code),
            );
        }
    }
    OffsetCommitResponse::default().with_topics(topics)
}
