//! ListOffsets (key 2): earliest, latest, max timestamp, and offset by timestamp.

use super::fetch::READ_COMMITTED;
use crate::broker::Broker;
use crate::error::{BrokerError, NONE};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use std::sync::Arc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// ListOffsets v4+ carries the leader epoch of the returned offset.
const LEADER_EPOCH_VERSION: i16 = 4;

pub fn handle(broker: &Arc<Broker>, version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let read_committed = req.isolation_level == READ_COMMITTED;
                    let topic = t.name.0.as_str();
                    match lookup(
                        broker,
                        topic,
                        p.partition_index,
                        p.timestamp,
                        read_committed,
                    ) {
                        Ok((timestamp, offset)) => base
                            .with_error_code(NONE)
                            .with_timestamp(timestamp)
                            .with_offset(offset)
                            .with_leader_epoch(if offset >= 0 && version >= LEADER_EPOCH_VERSION {
                                0
                            } else {
                                -1
                            }),
                        Err(e) => base.with_error_code(e.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// `(timestamp, offset)` for one partition; `(-1, -1)` when no record matches.
fn lookup(
    broker: &Broker,
    topic: &str,
    partition: i32,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64), BrokerError> {
    let p = broker.partition(topic, partition)?;
    if !p.serves_clients() {
        return Err(BrokerError::NotLeaderOrFollower);
    }
    let (log_start, hw, _) = Broker::offsets(&p);
    Ok(match timestamp {
        // read_committed consumers start at the last stable offset (Kafka's isolation level).
        LATEST if read_committed => (-1, p.with_log(|l| l.last_stable_offset())),
        LATEST => (-1, hw),
        EARLIEST | EARLIEST_LOCAL => (-1, log_start),
        MAX_TIMESTAMP => p
            .with_log(|l| l.max_timestamp_record())?
            .unwrap_or((-1, -1)),
        LATEST_TIERED => (-1, -1),
        ts if ts >= 0 => p
            .with_log(|l| l.offset_for_timestamp(ts))?
            .unwrap_or((-1, -1)),
        _ => (-1, -1),
    })
}
