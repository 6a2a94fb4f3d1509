//! FindCoordinator (key 10): on a single node this node coordinates every group; in a cluster
//! the leader of the group's `__consumer_offsets` partition does. Transaction coordinators are
//! not available until transactions are implemented.

use super::str_bytes;
use crate::broker::Broker;
use crate::error::{code, NONE};
use crate::groups::offsets_topic::OFFSETS_TOPIC_PARTITIONS;
use crate::topics::CONSUMER_OFFSETS_TOPIC;
use chronik_group::records::partition_for;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

const KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator v4+ batches keys in `coordinator_keys`.
const BATCHED_VERSION: i16 = 4;

pub fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let (error, message) = if req.key_type != KEY_TYPE_GROUP {
        (
            code(ResponseError::CoordinatorNotAvailable),
            Some("transactions are not supported yet".to_string()),
        )
    } else if let Err(e) = broker.groups.ensure_offsets_topic(broker) {
        tracing::warn!(error = %e, "cannot create __consumer_offsets");
        (
            code(ResponseError::CoordinatorNotAvailable),
            Some(e.message()),
        )
    } else {
        (NONE, None)
    };
    let found = |key: &str| -> (i32, StrBytes, i32, i16, Option<String>) {
        if error != NONE {
            return (-1, str_bytes(""), -1, error, message.clone());
        }
        match coordinator_of(broker, key) {
            Some((node, host, port)) => (node, str_bytes(host), port, NONE, None),
            None => (
                -1,
                str_bytes(""),
                -1,
                code(ResponseError::CoordinatorNotAvailable),
                Some("the group's coordinator has no leader yet".into()),
            ),
        }
    };
    if version >= BATCHED_VERSION {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (node, host, port, error, message) = found(key.as_str());
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node.into())
                    .with_host(host)
                    .with_port(port)
                    .with_error_code(error)
                    .with_error_message(message.map(str_bytes))
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (node, host, port, error, message) = found(req.key.as_str());
    let mut r = FindCoordinatorResponse::default()
        .with_error_code(error)
        .with_node_id(node.into())
        .with_host(host)
        .with_port(port);
    if version >= 1 {
        r.error_message = message.map(str_bytes);
    }
    r
}

/// The broker coordinating `group_id`: this node on a single node; in a cluster the leader of
/// the group's `__consumer_offsets` partition (`None` while it has none).
fn coordinator_of(broker: &Broker, group_id: &str) -> Option<(i32, String, i32)> {
    let Some(cluster) = &broker.cluster else {
        return Some((
            broker.config.node_id,
            broker.config.advertised_host.clone(),
            broker.config.advertised_port,
        ));
    };
    let p = partition_for(group_id, OFFSETS_TOPIC_PARTITIONS);
    let (leader, _) = broker.partition_leader(CONSUMER_OFFSETS_TOPIC, p)?;
    let (host, port) =
        cluster.with_image(|i| i.brokers.get(&leader).map(|b| (b.host.clone(), b.port)))?;
    Some((i32::try_from(leader).ok()?, host, port))
}
