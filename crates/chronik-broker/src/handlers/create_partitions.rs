//! CreatePartitions (key 37).

use super::str_bytes;
use crate::broker::Broker;
use crate::error::NONE;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use std::sync::Arc;

pub fn handle(broker: &Arc<Broker>, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.as_str().to_string();
            let assignments = t.assignments.as_ref().map(|sets| {
                sets.iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
            let outcome = broker.create_partitions(&name, t.count, assignments, req.validate_only);
            let r = CreatePartitionsTopicResult::default().with_name(t.name);
            match outcome {
                Ok(()) => r.with_error_code(NONE),
                Err(e) => r
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message()))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
