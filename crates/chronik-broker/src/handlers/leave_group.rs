//! LeaveGroup (key 13): one member (v0-2) or a batch (v3+).

use super::str_bytes;
use crate::broker::Broker;
use chronik_group::{error, LeavingMember};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use std::sync::Arc;

const BATCH_VERSION: i16 = 3;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let group = req.group_id.0.to_string();
    let members: Vec<LeavingMember> = if version >= BATCH_VERSION {
        req.members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    if let Some(c) = broker.groups.coordinator_error(broker, &group) {
        return LeaveGroupResponse::default().with_error_code(c);
    }
    let ((group_error, codes), stored) = broker
        .groups
        .run(broker, |c, now| {
            let (g, codes, out) = c.leave(&group, &members, now);
            ((g, codes), out)
        })
        .await;
    let group_error = if stored {
        group_error
    } else {
        error::COORDINATOR_NOT_AVAILABLE
    };
    if version < BATCH_VERSION {
        let code = if group_error != error::NONE {
            group_error
        } else {
            codes.first().copied().unwrap_or(error::NONE)
        };
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let responses = members
        .into_iter()
        .zip(codes)
        .map(|(m, code)| {
            MemberResponse::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(m.group_instance_id.map(str_bytes))
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default()
        .with_error_code(group_error)
        .with_members(responses)
}
