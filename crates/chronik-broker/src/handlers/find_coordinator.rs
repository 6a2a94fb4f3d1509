//! FindCoordinator (key 10): this node coordinates every group (single node). Transaction
//! coordinators are not available until transactions are implemented.

use super::str_bytes;
use crate::broker::Broker;
use crate::error::{code, NONE};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
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
    let node = broker.config.node_id;
    let host = str_bytes(broker.config.advertised_host.clone());
    let port = broker.config.advertised_port;
    let (node, port) = if error == NONE {
        (node, port)
    } else {
        (-1, -1)
    };
    if version >= BATCHED_VERSION {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node.into())
                    .with_host(host.clone())
                    .with_port(port)
                    .with_error_code(error)
                    .with_error_message(message.clone().map(str_bytes))
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
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
