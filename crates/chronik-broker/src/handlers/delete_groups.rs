//! DeleteGroups (key 42).

use crate::broker::Broker;
use chronik_group::{error, Output};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.0.to_string()).collect();
    let (codes, stored) = broker
        .groups
        .run(broker, |c, _| {
            let (codes, records) = c.delete_groups(&ids);
            (
                codes,
                Output {
                    records,
                    replies: Vec::new(),
                },
            )
        })
        .await;
    let results = req
        .groups_names
        .into_iter()
        .zip(codes)
        .map(|(g, code)| {
            let code = if stored || code != error::NONE {
                code
            } else {
                error::COORDINATOR_NOT_AVAILABLE
            };
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(code)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
