//! SyncGroup (key 14): waits for the leader's assignment.

use super::str_bytes;
use crate::broker::Broker;
use chronik_group::{error, Reply, SyncRequest, SyncResponse};
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use std::sync::Arc;

/// SyncGroup v5+ carries protocol type and name.
const PROTOCOL_FIELDS_VERSION: i16 = 5;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: SyncGroupRequest,
) -> SyncGroupResponse {
    let request = SyncRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: req.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    if let Some(c) = broker.groups.coordinator_error(broker, &request.group_id) {
        return SyncGroupResponse::default().with_error_code(c);
    }
    let (token, rx) = broker.groups.waiter();
    broker
        .groups
        .run(broker, |c, now| ((), c.sync(request, token, now)))
        .await;
    let r = match rx.await {
        Ok(Reply::Sync(r)) => r,
        _ => SyncResponse::error(error::COORDINATOR_NOT_AVAILABLE),
    };
    let mut out = SyncGroupResponse::default()
        .with_error_code(r.error_code)
        .with_assignment(r.assignment);
    if version >= PROTOCOL_FIELDS_VERSION {
        out.protocol_type = r.protocol_type.map(str_bytes);
        out.protocol_name = r.protocol_name.map(str_bytes);
    }
    out
}
