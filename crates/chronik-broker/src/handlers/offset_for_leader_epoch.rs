//! OffsetForLeaderEpoch (key 23): the end offset of a leader epoch, which consumers use to
//! validate their position after a leader change (KIP-320) — a position past that end means
//! the log they read was truncated. On a single node there is one epoch, 0.

use super::topic_name;
use crate::broker::Broker;
use crate::error::{code, NONE};
use crate::partition::{Partition, Role};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use std::sync::Arc;

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
const UNDEFINED: i32 = -1;
const UNDEFINED_OFFSET: i64 = -1;

pub fn handle(
    broker: &Arc<Broker>,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.topic.0.to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let base = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(UNDEFINED)
                        .with_end_offset(UNDEFINED_OFFSET);
                    match broker.partition(&name, p.partition) {
                        Err(e) => base.with_error_code(e.code()),
                        Ok(part) => {
                            match end_of_epoch(&part, p.current_leader_epoch, p.leader_epoch) {
                                Ok((epoch, end)) => base
                                    .with_error_code(NONE)
                                    .with_leader_epoch(epoch)
                                    .with_end_offset(end),
                                Err(error) => base.with_error_code(error),
                            }
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic_name(&name))
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// The largest epoch ≤ `wanted` this log has and the offset where it ends (the start of the
/// next epoch, or the log end for the current one). Only the leader answers; a
/// `current_leader_epoch` (≠ -1) must be the leader's.
fn end_of_epoch(p: &Partition, current: i32, wanted: i32) -> Result<(i32, i64), i16> {
    let epoch = match p.role() {
        Role::Local => 0,
        Role::Leader { epoch } => epoch,
        Role::Follower { .. } => return Err(code(ResponseError::NotLeaderOrFollower)),
    };
    if current != UNDEFINED && current < epoch {
        return Err(code(ResponseError::FencedLeaderEpoch));
    }
    if current > epoch {
        return Err(code(ResponseError::UnknownLeaderEpoch));
    }
    let (log_end, batches) = p.with_log(|l| {
        let batches = if matches!(p.role(), Role::Local) {
            Ok(Vec::new())
        } else {
            l.batch_locations()
        };
        (l.log_end_offset(), batches)
    });
    if wanted >= epoch {
        return Ok((epoch, log_end));
    }
    let batches = batches.map_err(|_| code(ResponseError::KafkaStorageError))?;
    // Epochs never decrease along the log: the answer ends where the first later epoch starts.
    let mut found = UNDEFINED;
    for b in &batches {
        if b.leader_epoch > wanted {
            return Ok(if found == UNDEFINED {
                (UNDEFINED, UNDEFINED_OFFSET)
            } else {
                (found, b.base_offset)
            });
        }
        found = b.leader_epoch;
    }
    Ok(if found == UNDEFINED {
        (UNDEFINED, UNDEFINED_OFFSET)
    } else {
        (found, log_end)
    })
}
