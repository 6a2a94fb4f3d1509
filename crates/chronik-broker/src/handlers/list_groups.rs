//! ListGroups (key 16): with state (v4+) and type (v5+) filters.

use super::str_bytes;
use crate::broker::Broker;
use crate::error::NONE;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use std::sync::Arc;

const STATE_VERSION: i16 = 4;
const TYPE_VERSION: i16 = 5;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_string()).collect();
    let coordinator = broker.groups.read().await;
    let groups = coordinator
        .list(&states, &types)
        .into_iter()
        .map(|g| {
            let mut out = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            if version >= STATE_VERSION {
                out.group_state = str_bytes(g.state);
            }
            if version >= TYPE_VERSION {
                out.group_type = str_bytes("classic");
            }
            out
        })
        .collect();
    ListGroupsResponse::default()
        .with_error_code(NONE)
        .with_groups(groups)
}
