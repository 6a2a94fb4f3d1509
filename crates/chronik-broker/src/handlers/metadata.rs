//! Metadata (key 3).

use super::{authorized, str_bytes, topic_name};
use crate::broker::Broker;
use crate::error::{code, BrokerError, NONE};
use crate::partition::Role;
use crate::topics::{validate_topic_name, Topic};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
use std::sync::Arc;

pub fn handle(broker: &Arc<Broker>, version: i16, req: MetadataRequest) -> MetadataResponse {
    let node = broker.config.node_id;
    let topic_ops = if req.include_topic_authorized_operations {
        authorized::TOPIC
    } else {
        authorized::NOT_PROVIDED
    };
    let cluster_ops = if req.include_cluster_authorized_operations {
        authorized::CLUSTER
    } else {
        authorized::NOT_PROVIDED
    };
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
                        Some(topic) => topic_metadata(broker, &topic, node),
                        None => MetadataResponseTopic::default()
                            .with_topic_id(t.topic_id)
                            .with_error_code(code(if broker.metadata_ready() {
                                ResponseError::UnknownTopicId
                            } else {
                                ResponseError::LeaderNotAvailable
                            })),
                    },
                })
                .collect()
        }
    };
    let (brokers, controller) = brokers(broker);
    let topics = topics
        .into_iter()
        .map(|t| t.with_topic_authorized_operations(topic_ops))
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(broker.cluster_id.clone())))
        .with_controller_id(controller.into())
        .with_cluster_authorized_operations(cluster_ops)
        .with_topics(topics)
}

/// The brokers to list and the controller id: this node alone, or in a cluster every
/// registered broker and the controller leader (-1 while there is none).
pub(crate) fn brokers(broker: &Broker) -> (Vec<MetadataResponseBroker>, i32) {
    let Some(node) = &broker.cluster else {
        let me = MetadataResponseBroker::default()
            .with_node_id(broker.config.node_id.into())
            .with_host(str_bytes(broker.config.advertised_host.clone()))
            .with_port(broker.config.advertised_port);
        return (vec![me], broker.config.node_id);
    };
    let list = node.with_image(|i| {
        i.brokers
            .iter()
            .map(|(id, b)| {
                MetadataResponseBroker::default()
                    .with_node_id(i32::try_from(*id).unwrap_or(-1).into())
                    .with_host(str_bytes(b.host.clone()))
                    .with_port(b.port)
            })
            .collect()
    });
    let controller = node
        .controller_leader()
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(-1);
    (list, controller)
}

fn all_topics(broker: &Broker, node: i32) -> Vec<MetadataResponseTopic> {
    broker
        .all_topics()
        .iter()
        .map(|t| topic_metadata(broker, t, node))
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
        return topic_metadata(broker, &t, node);
    }
    if let Err(e) = validate_topic_name(name) {
        return error(e.code());
    }
    if !broker.metadata_ready() {
        // A cluster node that has not learnt every topic yet: the topic may exist (and must
        // not be created again); LEADER_NOT_AVAILABLE makes clients ask again.
        return error(code(ResponseError::LeaderNotAvailable));
    }
    if !allow_create {
        return error(code(ResponseError::UnknownTopicOrPartition));
    }
    match broker.auto_create(name) {
        Ok(Some(t)) => topic_metadata(broker, &t, node),
        Ok(None) => error(code(ResponseError::UnknownTopicOrPartition)),
        Err(e @ BrokerError::Storage(_)) => {
            tracing::warn!(topic = name, error = %e, "auto-creating topic failed");
            error(e.code())
        }
        Err(e) => error(e.code()),
    }
}

fn topic_metadata(broker: &Broker, t: &Topic, node: i32) -> MetadataResponseTopic {
    if let Some(cluster) = &broker.cluster {
        return cluster_topic_metadata(cluster, t);
    }
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

/// A topic as a cluster node sees it: each partition's leader and epoch from its Raft group
/// on this node, its replicas from the controller's image, and its in-sync replicas as the
/// leader tracks them (all replicas when this node does not lead). A partition this node has
/// no replica of is reported as its leader announced it (see `announce_leadership`).
fn cluster_topic_metadata(
    cluster: &chronik_replication::node::ReplicationNode,
    t: &Topic,
) -> MetadataResponseTopic {
    let to_id = |n: u64| i32::try_from(n).unwrap_or(-1).into();
    let replicas_of = |index: i32| -> Vec<u64> {
        cluster
            .with_image(|i| i.replicas(&t.record.name, index).map(<[u64]>::to_vec))
            .unwrap_or_default()
    };
    let partitions = (0..t.record.partitions)
        .map(|index| {
            let Some(p) = t.partition(index) else {
                let replicas = replicas_of(index);
                let group =
                    chronik_replication::transport::GroupId::new(t.record.name.clone(), index);
                let announced = cluster.announced_leader(&group);
                let (leader, epoch, isr, error) = match announced {
                    Some(a) => (
                        i32::try_from(a.leader).unwrap_or(-1),
                        i32::try_from(a.term).unwrap_or(i32::MAX),
                        a.isr,
                        NONE,
                    ),
                    None => (
                        -1,
                        -1,
                        replicas.clone(),
                        code(ResponseError::LeaderNotAvailable),
                    ),
                };
                return MetadataResponsePartition::default()
                    .with_error_code(error)
                    .with_partition_index(index)
                    .with_leader_id(leader.into())
                    .with_leader_epoch(epoch)
                    .with_replica_nodes(replicas.iter().map(|r| to_id(*r)).collect())
                    .with_isr_nodes(isr.into_iter().map(to_id).collect());
            };
            let replicas = replicas_of(index);
            let group = chronik_replication::transport::GroupId::new(t.record.name.clone(), index);
            let (leader, epoch) = match p.role() {
                Role::Leader { epoch } => (Some(cluster.node_id), epoch),
                Role::Follower {
                    leader: None,
                    epoch,
                } => {
                    // No leader known to this replica (as when its group stopped on a storage
                    // failure): the one the partition's leader announced, if any.
                    cluster.announced_leader(&group).map_or((None, epoch), |a| {
                        (Some(a.leader), i32::try_from(a.term).unwrap_or(i32::MAX))
                    })
                }
                Role::Follower { leader, epoch } => (leader, epoch),
                Role::Local => (Some(cluster.node_id), 0),
            };
            let isr = p.in_sync_replicas(cluster.node_id, &replicas, crate::broker::now_ms());
            let offline = p.with_log(|l| l.is_offline());
            let error = if offline && leader == Some(cluster.node_id) {
                code(ResponseError::KafkaStorageError)
            } else if leader.is_none() {
                code(ResponseError::LeaderNotAvailable)
            } else {
                NONE
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(p.tp.partition)
                .with_leader_id(leader.map_or(-1, |l| i32::try_from(l).unwrap_or(-1)).into())
                .with_leader_epoch(epoch)
                .with_replica_nodes(replicas.iter().map(|r| to_id(*r)).collect())
                .with_isr_nodes(isr.into_iter().map(to_id).collect())
                .with_offline_replicas(if offline {
                    vec![to_id(cluster.node_id)]
                } else {
                    vec![]
                })
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&t.record.name)))
        .with_topic_id(t.record.topic_id)
        .with_is_internal(t.is_internal())
        .with_partitions(partitions)
}
