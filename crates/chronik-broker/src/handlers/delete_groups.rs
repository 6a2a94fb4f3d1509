//! DeleteGroups (key 42).

use crate::broker::Broker;
use chronik_group::{error, Output};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let all: Vec<String> = req.groups_names.iter().map(|g| g.0.to_string()).collect();
    let not_coordinator: Vec<Option<i16>> = all
        .iter()
        .map(|g| broker.groups.coordinator_error(broker, g))
        .collect();
    let ids: Vec<String> = all
        .iter()
        .zip(&not_coordinator)
        .filter(|(_, n)| n.is_none())
        .map(|(g, _)| g.clone())
        .collect();
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
    let mut codes = codes.into_iter();
    let codes: Vec<i16> = not_coordinator
        .into_iter()
        .map(|n| n.unwrap_or_else(|| codes.next().unwrap_or(error::NONE)))
        .collect();
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
