//! AlterConfigs (key 33), the older, non-incremental form: the configs given for a resource
//! replace all of its overrides, so a key left out goes back to its default (Kafka's semantics;
//! IncrementalAlterConfigs is the form that changes single keys).

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::str_bytes;
use crate::broker::Broker;
use crate::error::{BrokerError, NONE};
use crate::topics::validate_configs;
use kafka_protocol::messages::alter_configs_request::AlterableConfig;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn handle(broker: &Arc<Broker>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let base = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let outcome = match r.resource_type {
                RESOURCE_TOPIC => replace_topic_configs(
                    broker,
                    r.resource_name.as_str(),
                    &r.configs,
                    req.validate_only,
                ),
                RESOURCE_BROKER => Err(BrokerError::InvalidRequest(
                    "dynamic broker configs are not supported".into(),
                )),
                other => Err(BrokerError::InvalidRequest(format!(
                    "Unsupported resource type {other}"
                ))),
            };
            match outcome {
                Ok(()) => base.with_error_code(NONE).with_error_message(None),
                Err(e) => base
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message()))),
            }
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// The topic's overrides become exactly `configs` (a null value is refused, as in Kafka).
fn replace_topic_configs(
    broker: &Broker,
    name: &str,
    configs: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), BrokerError> {
    broker
        .topic(name)
        .ok_or(BrokerError::UnknownTopicOrPartition)?;
    let mut overrides = BTreeMap::new();
    for c in configs {
        let key = c.name.as_str().to_string();
        let Some(value) = &c.value else {
            return Err(BrokerError::InvalidRequest(format!(
                "Null value not supported for topic configs: {key}"
            )));
        };
        overrides.insert(key, value.as_str().to_string());
    }
    validate_configs(&overrides)?;
    if validate_only {
        return Ok(());
    }
    broker.set_topic_configs(name, overrides)
}
