//! FindCoordinator (key 10): on a single node this node coordinates every group and every
//! transactional id; in a cluster the leader of the key's partition of `__consumer_offsets`
//! (groups) or `__transaction_state` (transactional ids) does.

use super::str_bytes;
use crate::broker::Broker;
use crate::error::{code, NONE};
use crate::groups::offsets_topic::OFFSETS_TOPIC_PARTITIONS;
use crate::topics::{CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};
use crate::txn::TXN_STATE_PARTITIONS;
use chronik_types::ids::partition_for;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
/// FindCoordinator v4+ batches keys in `coordinator_keys`.
const BATCHED_VERSION: i16 = 4;

pub fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let internal = match req.key_type {
        KEY_TYPE_GROUP => Ok((CONSUMER_OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS)),
        KEY_TYPE_TRANSACTION => Ok((TRANSACTION_STATE_TOPIC, TXN_STATE_PARTITIONS)),
        other => Err(other),
    };
    let ensured = match internal {
        Ok((CONSUMER_OFFSETS_TOPIC, _)) => broker.groups.ensure_offsets_topic(broker),
        Ok(_) => broker.txns.ensure_state_topic(broker),
        Err(_) => Ok(()),
    };
    let (error, message) = if let Err(key_type) = internal {
        (
            code(ResponseError::InvalidRequest),
            Some(format!("unknown coordinator key type {key_type}")),
        )
    } else if let Err(e) = ensured {
        tracing::warn!(error = %e, "cannot create an internal topic");
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
        let (topic, partitions) = internal.unwrap_or((CONSUMER_OFFSETS_TOPIC, 1));
        match coordinator_of(broker, topic, partition_for(key, partitions)) {
            Some((node, host, port)) => (node, str_bytes(host), port, NONE, None),
            None => (
                -1,
                str_bytes(""),
                -1,
                code(ResponseError::CoordinatorNotAvailable),
                Some("the coordinator's partition has no leader yet".into()),
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

/// The broker coordinating a key: this node on a single node; in a cluster the leader of the
/// key's `partition` of the internal `topic` (`None` while it has none).
fn coordinator_of(broker: &Broker, topic: &str, p: i32) -> Option<(i32, String, i32)> {
    let Some(cluster) = &broker.cluster else {
        return Some((
            broker.config.node_id,
            broker.config.advertised_host.clone(),
            broker.config.advertised_port,
        ));
    };
    let (leader, _) = broker.partition_leader(topic, p)?;
    let (host, port) =
        cluster.with_image(|i| i.brokers.get(&leader).map(|b| (b.host.clone(), b.port)))?;
    Some((i32::try_from(leader).ok()?, host, port))
}
