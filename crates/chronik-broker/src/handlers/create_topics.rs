//! CreateTopics (key 19).

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::dynamic_configs::sources;
use crate::error::{BrokerError, NONE};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut seen = BTreeMap::new();
    for t in &req.topics {
        *seen.entry(t.name.0.as_str().to_string()).or_insert(0) += 1;
    }
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.as_str().to_string();
            if seen.get(&name).copied().unwrap_or(0) > 1 {
                let e = BrokerError::InvalidRequest(format!("Create topics request from client contains multiple entries for the topic {name}"));
                return failed(&name, &e);
            }
            create_one(broker, version, t, req.validate_only).unwrap_or_else(|e| failed(&name, &e))
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn failed(name: &str, e: &BrokerError) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(topic_name(name))
        .with_error_code(e.code())
        .with_error_message(Some(str_bytes(e.message())))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}

fn create_one(
    broker: &Broker,
    version: i16,
    t: CreatableTopic,
    validate_only: bool,
) -> Result<CreatableTopicResult, BrokerError> {
    let name = t.name.0.as_str().to_string();
    let (partitions, rf) = if t.assignments.is_empty() {
        let p = if t.num_partitions == -1 {
            broker.config.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            match &broker.cluster {
                // A cluster's default.replication.factor: min(3, voters).
                Some(node) => {
                    i16::try_from(crate::cluster::replication_factor(node, -1)?).unwrap_or(i16::MAX)
                }
                None => broker.config.default_replication_factor,
            }
        } else {
            t.replication_factor
        };
        (p, rf)
    } else {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(BrokerError::InvalidRequest(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
        }
        let rf = t
            .assignments
            .first()
            .map_or(1, |a| i16::try_from(a.broker_ids.len()).unwrap_or(i16::MAX));
        (i32::try_from(t.assignments.len()).unwrap_or(i32::MAX), rf)
    };
    let assigned = replica_sets(&t.assignments)?;
    let mut configs = BTreeMap::new();
    for c in t.configs {
        let Some(v) = c.value else {
            return Err(BrokerError::InvalidConfig(
                chronik_storage::config::InvalidConfig {
                    name: c.name.as_str().to_string(),
                    value: "null".into(),
                    reason: "Null value not supported for topic configs".into(),
                },
            ));
        };
        configs.insert(c.name.as_str().to_string(), v.as_str().to_string());
    }
    let topic_id = if let Some(sets) = &assigned {
        broker
            .create_topic_assigned(&name, sets, configs.clone(), validate_only)?
            .map_or(uuid::Uuid::nil(), |t| t.record.topic_id)
    } else if validate_only {
        broker.validate_new_topic(&name, partitions, rf, &configs)?;
        uuid::Uuid::nil()
    } else {
        broker
            .create_topic(&name, partitions, rf, configs.clone())?
            .record
            .topic_id
    };
    let mut result = CreatableTopicResult::default()
        .with_name(topic_name(&name))
        .with_error_code(NONE)
        .with_error_message(None)
        .with_num_partitions(partitions)
        .with_replication_factor(rf);
    if version >= 7 {
        result.topic_id = topic_id;
    }
    if version >= 5 {
        result.configs = Some(describe_topic_configs(broker, &configs));
    }
    Ok(result)
}

/// The replica sets of a CreateTopics `assignments`, in partition order; `None` when there are
/// none. The partition indexes must be 0, 1, 2, ... (Kafka: INVALID_REPLICA_ASSIGNMENT).
fn replica_sets(
    assignments: &[CreatableReplicaAssignment],
) -> Result<Option<Vec<Vec<i32>>>, BrokerError> {
    if assignments.is_empty() {
        return Ok(None);
    }
    let mut by_index: Vec<(i32, Vec<i32>)> = assignments
        .iter()
        .map(|a| {
            (
                a.partition_index,
                a.broker_ids.iter().map(|b| b.0).collect(),
            )
        })
        .collect();
    by_index.sort_by_key(|(i, _)| *i);
    let consecutive = by_index
        .iter()
        .enumerate()
        .all(|(n, (i, _))| usize::try_from(*i).ok() == Some(n));
    if !consecutive {
        return Err(BrokerError::InvalidReplicaAssignment(
            "partitions should be a consecutive 0-based integer sequence".into(),
        ));
    }
    Ok(Some(by_index.into_iter().map(|(_, set)| set).collect()))
}

/// Every topic config with its value and source, as CreateTopics v5+ returns them.
fn describe_topic_configs(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    let dynamic = broker.dynamic_configs();
    chronik_storage::config::TOPIC_CONFIGS
        .iter()
        .filter_map(|d| {
            let synonyms = sources::topic_config(&dynamic, broker.config.node_id, overrides, d);
            let (_, value, source) = synonyms.into_iter().next()?;
            Some(
                CreatableTopicConfigs::default()
                    .with_name(str_bytes(d.name))
                    .with_value(value.map(str_bytes))
                    .with_config_source(source),
            )
        })
        .collect()
}
