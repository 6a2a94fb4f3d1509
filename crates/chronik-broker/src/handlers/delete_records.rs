//! DeleteRecords (key 21): moves log start offsets forward, durably, before answering.

use super::ResponseFuture;
use crate::broker::Broker;
use crate::error::{BrokerError, NONE};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};
use std::sync::Arc;

/// Offset -1 means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub fn handle(broker: &Arc<Broker>, req: DeleteRecordsRequest) -> ResponseFuture {
    let mut any_moved = false;
    let mut topics: Vec<DeleteRecordsTopicResult> = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    let moved = broker
                        .partition(t.name.0.as_str(), p.partition_index)
                        .and_then(|part| {
                            if part.raft().is_some() {
                                // Moving the log start must be replicated; not built yet.
                                return Err(BrokerError::InvalidRequest(
                                    "DeleteRecords is not available in a cluster yet".into(),
                                ));
                            }
                            part.with_log(|l| {
                                let target = if p.offset == HIGH_WATERMARK {
                                    l.high_watermark()
                                } else {
                                    p.offset
                                };
                                l.delete_records_before(target)
                            })
                            .map_err(BrokerError::from)
                        });
                    match moved {
                        Ok(low) => {
                            any_moved = true;
                            r.with_error_code(NONE).with_low_watermark(low)
                        }
                        Err(e) => r.with_error_code(e.code()).with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    if any_moved {
        if let Err(e) = broker.write_checkpoints() {
            tracing::error!(error = %e, "could not persist log start offsets");
            let code = BrokerError::from(e).code();
            for t in &mut topics {
                for p in &mut t.partitions {
                    p.error_code = code;
                }
            }
        }
    }
    Box::pin(std::future::ready(Some(ResponseKind::DeleteRecords(
        DeleteRecordsResponse::default().with_topics(topics),
    ))))
}
