//! DescribeCluster (key 60).

use super::str_bytes;
use crate::broker::Broker;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use std::sync::Arc;

pub fn handle(broker: &Arc<Broker>, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let (brokers, controller) = super::metadata::brokers(broker);
    let ops = if req.include_cluster_authorized_operations {
        super::authorized::CLUSTER
    } else {
        super::authorized::NOT_PROVIDED
    };
    DescribeClusterResponse::default()
        .with_cluster_authorized_operations(ops)
        .with_cluster_id(str_bytes(broker.cluster_id.clone()))
        .with_controller_id(controller.into())
        .with_endpoint_type(1)
        .with_brokers(
            brokers
                .into_iter()
                .map(|b| {
                    DescribeClusterBroker::default()
                        .with_broker_id(b.node_id)
                        .with_host(b.host)
                        .with_port(b.port)
                })
                .collect(),
        )
}
