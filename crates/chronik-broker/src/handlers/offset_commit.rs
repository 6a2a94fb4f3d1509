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

/// One committed offset as the wire carries it: (partition, offset, leader epoch, metadata).
pub(super) type WireOffset<'a> = (i32, i64, i32, Option<&'a str>);

/// Where each requested partition's answer goes: (topic index, partition, index into the
/// entries sent to the coordinator, or `None` for a partition of an unknown topic).
pub(super) type Slot = (usize, i32, Option<usize>);

/// The offsets of known partitions as coordinator entries, and a slot for every partition.
/// Partitions of unknown topics are answered without reaching the coordinator.
pub(super) fn collect_offsets<'a>(
    broker: &Broker,
    topics: impl Iterator<Item = (&'a str, Vec<WireOffset<'a>>)>,
) -> (Vec<OffsetCommitEntry>, Vec<Slot>) {
    let mut entries = Vec::new();
    let mut slots = Vec::new();
    for (ti, (name, partitions)) in topics.enumerate() {
        let topic = broker.topic(name);
        for (partition, offset, leader_epoch, metadata) in partitions {
            let known = topic.as_ref().is_some_and(|tp| tp.has_partition(partition));
            if known {
                slots.push((ti, partition, Some(entries.len())));
                entries.push(OffsetCommitEntry {
                    topic: name.to_string(),
                    partition,
                    offset,
                    leader_epoch,
                    metadata: metadata.unwrap_or_default().to_string(),
                });
            } else {
                slots.push((ti, partition, None));
            }
        }
    }
    (entries, slots)
}

/// The error code of one slot once the coordinator answered `codes` (`stored`: its records
/// were stored).
pub(super) fn slot_code(entry: Option<usize>, stored: bool, codes: &[i16]) -> i16 {
    match entry {
        None => code(ResponseError::UnknownTopicOrPartition),
        Some(_) if !stored => error::COORDINATOR_NOT_AVAILABLE,
        Some(i) => codes.get(i).copied().unwrap_or(error::NONE),
    }
}

pub async fn handle(broker: &Arc<Broker>, req: WireRequest) -> OffsetCommitResponse {
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
        let error_code = slot_code(entry, stored, &codes);
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
