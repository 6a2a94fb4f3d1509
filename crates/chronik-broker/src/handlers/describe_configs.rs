//! DescribeConfigs (key 32): topic and broker configs with Kafka's names and defaults.

use super::create_topics::{SOURCE_DEFAULT, SOURCE_TOPIC};
use super::str_bytes;
use crate::broker::Broker;
use crate::error::{code, NONE};
use chronik_storage::config::TOPIC_CONFIGS;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use std::sync::Arc;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
const SOURCE_STATIC_BROKER: i8 = 4;
const TYPE_STRING: i8 = 2;

pub fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let keys: Option<Vec<String>> = r
                .configuration_keys
                .map(|ks| ks.iter().map(|k| k.as_str().to_string()).collect());
            let wanted = |name: &str| keys.as_ref().is_none_or(|ks| ks.iter().any(|k| k == name));
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let name = r.resource_name.as_str();
            match r.resource_type {
                RESOURCE_TOPIC => match broker.topic(name) {
                    None => base
                        .with_error_code(code(ResponseError::UnknownTopicOrPartition))
                        .with_error_message(Some(str_bytes(format!(
                            "Topic {name} does not exist"
                        )))),
                    Some(t) => {
                        let configs = TOPIC_CONFIGS
                            .iter()
                            .filter(|d| wanted(d.name))
                            .map(|d| {
                                let (value, source) = match t.record.configs.get(d.name) {
                                    Some(v) => (v.clone(), SOURCE_TOPIC),
                                    None => (d.default.to_string(), SOURCE_DEFAULT),
                                };
                                entry(
                                    version,
                                    req.include_synonyms,
                                    d.name,
                                    value,
                                    source,
                                    d.type_code(),
                                    false,
                                )
                            })
                            .collect();
                        base.with_error_code(NONE)
                            .with_error_message(None)
                            .with_configs(configs)
                    }
                },
                RESOURCE_BROKER if name.is_empty() || name == broker.config.node_id.to_string() => {
                    let configs = broker
                        .config
                        .describe()
                        .into_iter()
                        .filter(|(n, _)| wanted(n))
                        .map(|(n, v)| {
                            entry(
                                version,
                                req.include_synonyms,
                                n,
                                v,
                                SOURCE_STATIC_BROKER,
                                TYPE_STRING,
                                true,
                            )
                        })
                        .collect();
                    base.with_error_code(NONE)
                        .with_error_message(None)
                        .with_configs(configs)
                }
                RESOURCE_BROKER => base
                    .with_error_code(code(ResponseError::InvalidRequest))
                    .with_error_message(Some(str_bytes(format!("Unexpected broker id {name}")))),
                other => base
                    .with_error_code(code(ResponseError::InvalidRequest))
                    .with_error_message(Some(str_bytes(format!(
                        "Unsupported resource type {other}"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(
    version: i16,
    synonyms: bool,
    name: &str,
    value: String,
    source: i8,
    config_type: i8,
    read_only: bool,
) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(name))
        .with_value(Some(str_bytes(value.clone())))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_is_sensitive(false);
    if version >= 3 {
        e.config_type = config_type;
        e.documentation = None;
    }
    if synonyms {
        e.synonyms = vec![DescribeConfigsSynonym::default()
            .with_name(str_bytes(name))
            .with_value(Some(str_bytes(value)))
            .with_source(source)];
    }
    e
}
