//! DescribeGroups (key 15).

use super::str_bytes;
use crate::broker::Broker;
use crate::error::NONE;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use std::sync::Arc;

const INSTANCE_ID_VERSION: i16 = 4;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let not_coordinator: Vec<Option<i16>> = req
        .groups
        .iter()
        .map(|id| broker.groups.coordinator_error(broker, id.0.as_str()))
        .collect();
    let ops = if req.include_authorized_operations {
        super::authorized::GROUP
    } else {
        super::authorized::NOT_PROVIDED
    };
    let coordinator = broker.groups.read().await;
    let groups = req
        .groups
        .iter()
        .zip(not_coordinator)
        .map(|(id, not_coordinator)| {
            if let Some(c) = not_coordinator {
                return DescribedGroup::default()
                    .with_error_code(c)
                    .with_group_id(id.clone());
            }
            let d = coordinator.describe(id.0.as_str());
            DescribedGroup::default()
                .with_authorized_operations(ops)
                .with_error_code(NONE)
                .with_group_id(id.clone())
                .with_group_state(str_bytes(d.state))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol_name))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            let mut out = DescribedGroupMember::default()
                                .with_member_id(str_bytes(m.member_id))
                                .with_client_id(str_bytes(m.client_id))
                                .with_client_host(str_bytes(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment);
                            if version >= INSTANCE_ID_VERSION {
                                out.group_instance_id = m.group_instance_id.map(str_bytes);
                            }
                            out
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
