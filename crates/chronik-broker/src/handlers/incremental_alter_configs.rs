//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND, SUBTRACT on topic configs.

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::str_bytes;
use crate::broker::Broker;
use crate::error::{BrokerError, NONE};
use crate::topics::validate_configs;
use chronik_storage::config::config_def;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub fn handle(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let base = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let outcome = match r.resource_type {
                RESOURCE_TOPIC => alter_topic(
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn alter_topic(
    broker: &Broker,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), BrokerError> {
    let topic = broker
        .topic(name)
        .ok_or(BrokerError::UnknownTopicOrPartition)?;
    let mut configs: BTreeMap<String, String> = topic.record.configs.clone();
    for op in ops {
        let key = op.name.as_str().to_string();
        let value = op.value.as_ref().map(|v| v.as_str().to_string());
        let current = || {
            configs
                .get(&key)
                .cloned()
                .or_else(|| config_def(&key).map(|d| d.default.to_string()))
                .unwrap_or_default()
        };
        let list_only = || {
            if config_def(&key).is_some_and(|d| d.is_list()) {
                Ok(())
            } else {
                Err(BrokerError::InvalidRequest(format!(
                    "Config value append/subtract is not allowed for config key {key}"
                )))
            }
        };
        match op.config_operation {
            OP_SET => {
                configs.insert(key, value.unwrap_or_default());
            }
            OP_DELETE => {
                configs.remove(&key);
            }
            OP_APPEND => {
                list_only()?;
                let mut items: Vec<String> = current()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                for v in value
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                {
                    if !items.iter().any(|i| i == v) {
                        items.push(v.to_string());
                    }
                }
                let joined = items.join(",");
                configs.insert(key, joined);
            }
            OP_SUBTRACT => {
                list_only()?;
                let remove: Vec<String> = value
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_string)
                    .collect();
                let items: Vec<String> = current()
                    .split(',')
                    .filter(|s| !remove.iter().any(|r| r == s))
                    .map(str::to_string)
                    .collect();
                configs.insert(key, items.join(","));
            }
            other => {
                return Err(BrokerError::InvalidRequest(format!(
                    "Unknown config operation {other}"
                )))
            }
        }
    }
    validate_configs(&configs)?;
    if validate_only {
        return Ok(());
    }
    broker.set_topic_configs(name, configs)
}
