//! Heartbeat (key 12).

use crate::broker::Broker;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, req: HeartbeatRequest) -> HeartbeatResponse {
    let group = req.group_id.0.to_string();
    let member = req.member_id.to_string();
    let instance = req.group_instance_id.as_ref().map(|s| s.to_string());
    if let Some(c) = broker.groups.coordinator_error(broker, &group) {
        return HeartbeatResponse::default().with_error_code(c);
    }
    let (code, _) = broker
        .groups
        .run(broker, |c, now| {
            (
                c.heartbeat(&group, req.generation_id, &member, instance.as_deref(), now),
                Default::default(),
            )
        })
        .await;
    HeartbeatResponse::default().with_error_code(code)
}
