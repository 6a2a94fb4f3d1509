//! DescribeConfigs (key 32): topic, broker and group configs with Kafka's names, defaults and
//! sources (a topic override, a dynamic broker config, the server's start-up value, a default).

use super::config_changes::{RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::str_bytes;
use crate::broker::Broker;
use crate::dynamic_configs::broker_defs::{self, BROKER_ONLY_CONFIGS};
use crate::dynamic_configs::group_defs::GROUP_CONFIGS;
use crate::dynamic_configs::sources::{self, Synonym};
use crate::error::{code, NONE};
use chronik_storage::config::{BROKER_SYNONYMS, TOPIC_CONFIGS};
use chronik_storage::dynamic_config_store::{DynamicResource, CLUSTER_DEFAULT};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

const TYPE_STRING: i8 = 2;

/// How entries are written: the request's version and whether it asked for synonyms.
#[derive(Clone, Copy)]
struct Form {
    version: i16,
    synonyms: bool,
}

pub fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let form = Form {
        version,
        synonyms: req.include_synonyms,
    };
    let results = req
        .resources
        .into_iter()
        .map(|r| describe(broker, form, r))
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(broker: &Broker, form: Form, r: DescribeConfigsResource) -> DescribeConfigsResult {
    let keys: Option<Vec<String>> = r
        .configuration_keys
        .map(|ks| ks.iter().map(|k| k.as_str().to_string()).collect());
    // No key list, or an empty one, asks for every config (Kafka's ConfigHelper).
    let wanted = |name: &str| {
        keys.as_ref()
            .is_none_or(|ks| ks.is_empty() || ks.iter().any(|k| k == name))
    };
    let base = DescribeConfigsResult::default()
        .with_resource_type(r.resource_type)
        .with_resource_name(r.resource_name.clone());
    let name = r.resource_name.as_str();
    let dynamic = broker.dynamic_configs();
    let node_id = broker.config.node_id;
    let fail = |e: ResponseError, message: String| {
        base.clone()
            .with_error_code(code(e))
            .with_error_message(Some(str_bytes(message)))
    };
    let entries: Vec<DescribeConfigsResourceResult> = match r.resource_type {
        RESOURCE_TOPIC => {
            let Some(t) = broker.topic(name) else {
                return fail(
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic {name} does not exist"),
                );
            };
            TOPIC_CONFIGS
                .iter()
                .filter(|d| wanted(d.name))
                .map(|d| {
                    let synonyms = sources::topic_config(&dynamic, node_id, &t.record.configs, d);
                    entry(form, d.name, synonyms, d.type_code(), false)
                })
                .collect()
        }
        RESOURCE_BROKER if name == CLUSTER_DEFAULT => {
            // The cluster-wide dynamic defaults, as Kafka lists them for the `""` broker.
            dynamic
                .get(DynamicResource::Broker, CLUSTER_DEFAULT)
                .into_iter()
                .filter(|(k, _)| wanted(k))
                .map(|(k, v)| {
                    let synonym = (k.clone(), Some(v), sources::SOURCE_DYNAMIC_DEFAULT_BROKER);
                    let type_code = broker_defs::type_code(&k);
                    entry(form, &k, vec![synonym], type_code, false)
                })
                .collect()
        }
        RESOURCE_BROKER if name == node_id.to_string() => {
            let statics: BTreeMap<&str, String> = broker.config.describe().into_iter().collect();
            let custom = dynamic.broker_effective(node_id);
            let mut names: Vec<&str> = statics.keys().copied().collect();
            names.extend(BROKER_SYNONYMS.iter().map(|(_, b)| *b));
            names.extend(BROKER_ONLY_CONFIGS.iter().map(|d| d.name));
            names.extend(custom.keys().map(String::as_str));
            names.sort_unstable();
            names.dedup();
            names
                .into_iter()
                .filter(|n| wanted(n))
                .map(|n| {
                    let synonyms =
                        sources::broker_config(&dynamic, node_id, n, statics.get(n).cloned());
                    let dynamic_config = broker_defs::broker_config(n).is_some();
                    let type_code = if dynamic_config {
                        broker_defs::type_code(n)
                    } else {
                        TYPE_STRING
                    };
                    entry(form, n, synonyms, type_code, !dynamic_config)
                })
                .collect()
        }
        RESOURCE_BROKER => {
            return fail(
                ResponseError::InvalidRequest,
                format!(
                "Unexpected broker id, expected {node_id} or the empty string, but received {name}"
            ),
            )
        }
        RESOURCE_GROUP if !name.is_empty() => GROUP_CONFIGS
            .iter()
            .filter(|d| wanted(d.name))
            .map(|d| {
                let synonyms = sources::group_config(&dynamic, name, d);
                entry(form, d.name, synonyms, d.type_code(), false)
            })
            .collect(),
        RESOURCE_GROUP => {
            return fail(
                ResponseError::InvalidRequest,
                "Group name must not be empty".into(),
            )
        }
        other => {
            return fail(
                ResponseError::InvalidRequest,
                format!("Unsupported resource type {other}"),
            )
        }
    };
    base.with_error_code(NONE)
        .with_error_message(None)
        .with_configs(entries)
}

/// One config: the first synonym is its effective value and source.
fn entry(
    form: Form,
    name: &str,
    synonyms: Vec<Synonym>,
    config_type: i8,
    read_only: bool,
) -> DescribeConfigsResourceResult {
    let (value, source) = synonyms
        .first()
        .map_or((None, sources::SOURCE_DEFAULT), |(_, v, s)| (v.clone(), *s));
    let mut e = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(name))
        .with_value(value.map(str_bytes))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_is_sensitive(false);
    if form.version >= 3 {
        e.config_type = config_type;
        e.documentation = None;
    }
    if form.synonyms {
        e.synonyms = synonyms
            .into_iter()
            .map(|(n, v, s)| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(n))
                    .with_value(v.map(str_bytes))
                    .with_source(s)
            })
            .collect();
    }
    e
}
