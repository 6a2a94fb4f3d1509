//! AlterConfigs (key 33), the older, non-incremental form: the configs given for a resource
//! replace all of its overrides, so a key left out goes back to its default (Kafka's semantics;
//! IncrementalAlterConfigs is the form that changes single keys). Topics, brokers (dynamic
//! broker configs, this broker's id or `""` cluster-wide) and groups.

use super::config_changes::{
    duplicate_resource, duplicates, dynamic_resource, no_duplicate_keys, replace_dynamic,
    RESOURCE_TOPIC,
};
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
    let named: Vec<(i8, &str)> = req
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.as_str()))
        .collect();
    let responses = req
        .resources
        .iter()
        .zip(duplicates(&named))
        .map(|(r, twice)| {
            let base = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let outcome = if twice {
                Err(duplicate_resource())
            } else {
                alter(
                    broker,
                    r.resource_type,
                    r.resource_name.as_str(),
                    &r.configs,
                    req.validate_only,
                )
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

fn alter(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    configs: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), BrokerError> {
    no_duplicate_keys(configs.iter().map(|c| c.name.as_str()))?;
    let mut replacement = BTreeMap::new();
    for c in configs {
        let Some(value) = &c.value else {
            return Err(BrokerError::InvalidRequest(format!(
                "Null value not supported for : {}",
                c.name.as_str()
            )));
        };
        replacement.insert(c.name.as_str().to_string(), value.as_str().to_string());
    }
    if resource_type == RESOURCE_TOPIC {
        broker
            .topic(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        validate_configs(&replacement)?;
        if validate_only {
            return Ok(());
        }
        return broker.set_topic_configs(name, replacement);
    }
    let resource = dynamic_resource(resource_type, name, broker.config.node_id)?;
    replace_dynamic(broker, resource, name, replacement, validate_only)
}
