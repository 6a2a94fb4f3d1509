//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND, SUBTRACT on the configs of topics,
//! brokers (dynamic broker configs, this broker's id or `""` cluster-wide) and groups.

use super::config_changes::{
    alter_dynamic, apply_ops, duplicate_resource, duplicates, dynamic_resource, no_duplicate_keys,
    ConfigOp, RESOURCE_TOPIC,
};
use super::str_bytes;
use crate::broker::Broker;
use crate::error::{BrokerError, NONE};
use crate::topics::validate_configs;
use chronik_storage::config::config_def;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use std::sync::Arc;

pub fn handle(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
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
                    &config_ops(&r.configs),
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn config_ops(configs: &[AlterableConfig]) -> Vec<ConfigOp<'_>> {
    configs
        .iter()
        .map(|c| ConfigOp {
            name: c.name.as_str(),
            operation: c.config_operation,
            value: c.value.as_ref().map(|v| v.as_str()),
        })
        .collect()
}

fn alter(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    ops: &[ConfigOp<'_>],
    validate_only: bool,
) -> Result<(), BrokerError> {
    no_duplicate_keys(ops.iter().map(|o| o.name))?;
    if resource_type != RESOURCE_TOPIC {
        let resource = dynamic_resource(resource_type, name, broker.config.node_id)?;
        return alter_dynamic(broker, resource, name, ops, validate_only);
    }
    let topic = broker
        .topic(name)
        .ok_or(BrokerError::UnknownTopicOrPartition)?;
    let mut configs = topic.record.configs.clone();
    apply_ops(
        &mut configs,
        ops,
        |k| config_def(k).is_some_and(|d| d.is_list()),
        |k| config_def(k).map(|d| d.default.to_string()),
    )?;
    validate_configs(&configs)?;
    if validate_only {
        return Ok(());
    }
    broker.set_topic_configs(name, configs)
}
