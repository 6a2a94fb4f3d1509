//! CreatePartitions (key 37).

use super::str_bytes;
use crate::broker::Broker;
use crate::error::{BrokerError, NONE};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use std::sync::Arc;

pub fn handle(broker: &Arc<Broker>, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.as_str().to_string();
            let outcome = match &t.assignments {
                Some(a)
                    if a.iter()
                        .flat_map(|x| x.broker_ids.iter())
                        .any(|b| b.0 != broker.config.node_id) =>
                {
                    Err(BrokerError::InvalidRequest(
                        "assignment names an unknown broker".into(),
                    ))
                }
                _ => broker.create_partitions(&name, t.count, req.validate_only),
            };
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
