//! Metadata (key 3).

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::error::{code, BrokerError, NONE};
use crate::topics::{validate_topic_name, Topic};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
use std::sync::Arc;

pub fn handle(broker: &Arc<Broker>, version: i16, req: MetadataRequest) -> MetadataResponse {
    let node = broker.config.node_id;
    let topics = match req.topics {
        // v0: an empty list means all topics; v1+: null means all topics.
        None => all_topics(broker, node),
        Some(list) if list.is_empty() && version == 0 => all_topics(broker, node),
        Some(list) => {
            let allow_create = version < 4 || req.allow_auto_topic_creation;
            list.into_iter()
                .map(|t| match t.name {
                    Some(name) => named_topic(broker, node, name.0.as_str(), allow_create),
                    None => match broker.topic_by_id(t.topic_id) {
                        Some(topic) => topic_metadata(&topic, node),
                        None => MetadataResponseTopic::default()
                            .with_topic_id(t.topic_id)
                            .with_error_code(code(ResponseError::UnknownTopicId)),
                    },
                })
                .collect()
        }
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(node.into())
            .with_host(str_bytes(broker.config.advertised_host.clone()))
            .with_port(broker.config.advertised_port)])
        .with_cluster_id(Some(str_bytes(broker.cluster_id.clone())))
        .with_controller_id(node.into())
        .with_topics(topics)
}

fn all_topics(broker: &Broker, node: i32) -> Vec<MetadataResponseTopic> {
    broker
        .all_topics()
        .iter()
        .map(|t| topic_metadata(t, node))
        .collect()
}

fn named_topic(
    broker: &Broker,
    node: i32,
    name: &str,
    allow_create: bool,
) -> MetadataResponseTopic {
    let error = |e: i16| {
        MetadataResponseTopic::default()
            .with_name(Some(topic_name(name)))
            .with_error_code(e)
    };
    if let Some(t) = broker.topic(name) {
        return topic_metadata(&t, node);
    }
    if let Err(e) = validate_topic_name(name) {
        return error(e.code());
    }
    if !allow_create {
        return error(code(ResponseError::UnknownTopicOrPartition));
    }
    match broker.auto_create(name) {
        Ok(Some(t)) => topic_metadata(&t, node),
        Ok(None) => error(code(ResponseError::UnknownTopicOrPartition)),
        Err(e @ BrokerError::Storage(_)) => {
            tracing::warn!(topic = name, error = %e, "auto-creating topic failed");
            error(e.code())
        }
        Err(e) => error(e.code()),
    }
}

fn topic_metadata(t: &Topic, node: i32) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let offline = p.with_log(|l| l.is_offline());
            MetadataResponsePartition::default()
                .with_error_code(if offline {
                    code(ResponseError::KafkaStorageError)
                } else {
                    NONE
                })
                .with_partition_index(p.tp.partition)
                .with_leader_id(node.into())
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node.into()])
                .with_isr_nodes(vec![node.into()])
                .with_offline_replicas(if offline { vec![node.into()] } else { vec![] })
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&t.record.name)))
        .with_topic_id(t.record.topic_id)
        .with_is_internal(t.is_internal())
        .with_partitions(partitions)
}
