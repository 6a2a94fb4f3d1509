//! DescribeCluster (key 60).

use super::str_bytes;
use crate::broker::Broker;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use std::sync::Arc;

pub fn handle(broker: &Arc<Broker>, _req: DescribeClusterRequest) -> DescribeClusterResponse {
    let node = broker.config.node_id;
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(broker.cluster_id.clone()))
        .with_controller_id(node.into())
        .with_endpoint_type(1)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(node.into())
            .with_host(str_bytes(broker.config.advertised_host.clone()))
            .with_port(broker.config.advertised_port)])
}
