//! DeleteRecords (key 21): moves log start offsets forward, durably, before answering. In a
//! cluster the leader proposes a log-start request to the partition's Raft group; every
//! replica moves its log start when it applies it, and the answer comes once it is committed
//! and applied here.

use super::ResponseFuture;
use crate::broker::{now_ms, Broker};
use crate::error::{code, BrokerError, NONE};
use crate::partition::Partition;
use chronik_replication::{Applied, RecordBatch};
use chronik_storage::control::log_start_batch;
use chronik_storage::StorageError;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Offset -1 means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// One partition's outcome: its new low watermark, or an error code.
type Moved = Pin<Box<dyn Future<Output = Result<i64, i16>> + Send>>;

pub fn handle(broker: &Arc<Broker>, req: DeleteRecordsRequest) -> ResponseFuture {
    let broker = Arc::clone(broker);
    let pending: Vec<(_, Vec<(i32, Moved)>)> = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let moved = match broker.partition(t.name.0.as_str(), p.partition_index) {
                        Ok(part) => delete_before(&part, p.offset),
                        Err(e) => Box::pin(std::future::ready(Err(e.code()))) as Moved,
                    };
                    (p.partition_index, moved)
                })
                .collect();
            (t.name, partitions)
        })
        .collect();
    Box::pin(async move {
        let mut any_moved = false;
        let mut topics = Vec::with_capacity(pending.len());
        for (name, partitions) in pending {
            let mut results = Vec::with_capacity(partitions.len());
            for (index, moved) in partitions {
                let r = DeleteRecordsPartitionResult::default().with_partition_index(index);
                results.push(match moved.await {
                    Ok(low) => {
                        any_moved = true;
                        r.with_error_code(NONE).with_low_watermark(low)
                    }
                    Err(error) => r.with_error_code(error).with_low_watermark(-1),
                });
            }
            topics.push(
                DeleteRecordsTopicResult::default()
                    .with_name(name)
                    .with_partitions(results),
            );
        }
        if any_moved {
            if let Err(e) = broker.write_checkpoints() {
                tracing::error!(error = %e, "could not persist log start offsets");
                let error = BrokerError::from(e).code();
                for t in &mut topics {
                    for p in &mut t.partitions {
                        p.error_code = error;
                    }
                }
            }
        }
        Some(ResponseKind::DeleteRecords(
            DeleteRecordsResponse::default().with_topics(topics),
        ))
    })
}

/// Moves one partition's log start to `offset` (-1: its high watermark).
fn delete_before(p: &Arc<Partition>, offset: i64) -> Moved {
    let target = p.with_log(|l| {
        let target = if offset == HIGH_WATERMARK {
            l.high_watermark()
        } else {
            offset
        };
        if target > l.high_watermark() || target < 0 {
            Err(BrokerError::Storage(StorageError::OffsetOutOfRange {
                offset: target,
                log_start_offset: l.log_start_offset(),
                log_end_offset: l.high_watermark(),
            }))
        } else {
            Ok(target)
        }
    });
    let target = match target {
        Ok(t) => t,
        Err(e) => return Box::pin(std::future::ready(Err(e.code()))),
    };
    let Some(proposer) = p.proposer() else {
        let moved = p
            .with_log(|l| l.delete_records_before(target))
            .map_err(|e| BrokerError::from(e).code());
        return Box::pin(std::future::ready(moved));
    };
    if !p.accepts_writes() {
        return Box::pin(std::future::ready(Err(code(
            ResponseError::NotLeaderOrFollower,
        ))));
    }
    let proposed = proposer.propose(RecordBatch(log_start_batch(target, now_ms()).into()));
    Box::pin(async move {
        match proposed.await {
            Ok(Applied::LogStart { low_watermark }) => Ok(low_watermark),
            Ok(other) => {
                tracing::error!(?other, "a log-start request applied as something else");
                Err(code(ResponseError::KafkaStorageError))
            }
            Err(e) => {
                tracing::warn!(error = %e, "a log-start request was not committed");
                Err(code(ResponseError::NotLeaderOrFollower))
            }
        }
    })
}
