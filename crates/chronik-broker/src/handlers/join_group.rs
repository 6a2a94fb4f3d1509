//! JoinGroup (key 11): waits until the join phase of the rebalance ends.

use super::str_bytes;
use crate::broker::Broker;
use chronik_group::{error, JoinRequest, JoinResponse, Reply};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use std::sync::Arc;

/// JoinGroup v4+ requires a known member id (KIP-394).
const KNOWN_MEMBER_ID_VERSION: i16 = 4;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: JoinGroupRequest,
    client_id: String,
    client_host: String,
) -> JoinGroupResponse {
    let request = JoinRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id,
        client_host,
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= KNOWN_MEMBER_ID_VERSION,
    };
    if let Some(c) = broker.groups.coordinator_error(broker, &request.group_id) {
        return encode(version, JoinResponse::error(c, &request.member_id));
    }
    if let Err(e) = broker.groups.ensure_offsets_topic(broker) {
        tracing::warn!(error = %e, "cannot create __consumer_offsets");
        return encode(
            version,
            JoinResponse::error(error::COORDINATOR_NOT_AVAILABLE, &request.member_id),
        );
    }
    let member_id = request.member_id.clone();
    let (token, rx) = broker.groups.waiter();
    broker
        .groups
        .run(broker, |c, now| ((), c.join(request, token, now)))
        .await;
    let response = match rx.await {
        Ok(Reply::Join(r)) => r,
        _ => JoinResponse::error(error::COORDINATOR_NOT_AVAILABLE, &member_id),
    };
    encode(version, response)
}

fn encode(version: i16, r: JoinResponse) -> JoinGroupResponse {
    let mut out = JoinGroupResponse::default()
        .with_error_code(r.error_code)
        .with_generation_id(r.generation_id)
        .with_leader(str_bytes(r.leader))
        .with_member_id(str_bytes(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|(id, iid, metadata)| {
                    let mut m = JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(id))
                        .with_metadata(metadata);
                    if version >= 5 {
                        m.group_instance_id = iid.map(str_bytes);
                    }
                    m
                })
                .collect(),
        );
    // v7+ has a nullable protocol name and the protocol type; earlier versions a plain string.
    if version >= 7 {
        out.protocol_type = r.protocol_type.map(str_bytes);
        out.protocol_name = r.protocol_name.map(str_bytes);
    } else {
        out.protocol_name = Some(str_bytes(r.protocol_name.unwrap_or_default()));
    }
    out
}
