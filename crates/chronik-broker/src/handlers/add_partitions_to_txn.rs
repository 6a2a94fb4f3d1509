//! AddPartitionsToTxn (key 24), v0-3 (the client's form): the partitions join the producer's
//! open transaction. One error code for the whole request, reported on every partition, as
//! Kafka does; partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and the others
//! OPERATION_NOT_ATTEMPTED.

use crate::broker::Broker;
use crate::error::{code, fenced_for_version, NONE};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use std::sync::Arc;

/// Version 2+ knows PRODUCER_FENCED; older versions get INVALID_PRODUCER_EPOCH.
const PRODUCER_FENCED_VERSION: i16 = 2;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let transactional_id = req.v3_and_below_transactional_id.0.to_string();
    let producer = (
        req.v3_and_below_producer_id.0,
        req.v3_and_below_producer_epoch,
    );
    let mut partitions = Vec::new();
    let mut unknown = false;
    for t in &req.v3_and_below_topics {
        let topic = broker.topic(t.name.0.as_str());
        for p in &t.partitions {
            unknown |= !topic.as_ref().is_some_and(|tp| tp.has_partition(*p));
            partitions.push((t.name.0.to_string(), *p));
        }
    }
    let result = if unknown {
        Err(None)
    } else if let Some(c) = broker.txns.coordinator_error(broker, &transactional_id) {
        Err(Some(c))
    } else {
        broker
            .txns
            .add_partitions(broker, &transactional_id, producer, &partitions)
            .await
            .map_err(|e| {
                Some(fenced_for_version(
                    e.code(),
                    version >= PRODUCER_FENCED_VERSION,
                ))
            })
    };
    let topics = req
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let topic = broker.topic(t.name.0.as_str());
            let results = t
                .partitions
                .iter()
                .map(|p| {
                    let known = topic.as_ref().is_some_and(|tp| tp.has_partition(*p));
                    let c = match &result {
                        Ok(()) => NONE,
                        Err(Some(c)) => *c,
                        Err(None) if known => code(ResponseError::OperationNotAttempted),
                        Err(None) => code(ResponseError::UnknownTopicOrPartition),
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(c)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}
