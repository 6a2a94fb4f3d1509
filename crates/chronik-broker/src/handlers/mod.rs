//! One handler per Kafka API. `dispatch` runs the synchronous part of a request at once (so
//! produce appends happen in the order requests arrived on the connection) and returns a future
//! for the rest (waiting for fsync, long-poll fetch). `None` means no response (acks=0).

mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod fetch;
mod incremental_alter_configs;
mod list_offsets;
mod metadata;
mod produce;

pub use api_versions::{api_versions_response, unsupported_version_response};

use crate::broker::Broker;
use chronik_protocol::DecodedRequest;
use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type ResponseFuture = Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send>>;

fn ready(r: ResponseKind) -> ResponseFuture {
    Box::pin(std::future::ready(Some(r)))
}

/// Handles one decoded request.
pub fn dispatch(broker: &Arc<Broker>, req: DecodedRequest) -> ResponseFuture {
    let v = req.header.request_api_version;
    metrics::counter!("chronik_requests_total", "api" => format!("{:?}", req.api_key)).increment(1);
    match req.body {
        RequestKind::ApiVersions(_) => ready(ResponseKind::ApiVersions(api_versions_response())),
        RequestKind::Metadata(r) => ready(ResponseKind::Metadata(metadata::handle(broker, v, r))),
        RequestKind::Produce(r) => produce::handle(broker, v, r),
        RequestKind::Fetch(r) => {
            let broker = Arc::clone(broker);
            Box::pin(async move { Some(ResponseKind::Fetch(fetch::handle(&broker, v, r).await)) })
        }
        RequestKind::ListOffsets(r) => ready(ResponseKind::ListOffsets(list_offsets::handle(
            broker, v, r,
        ))),
        RequestKind::CreateTopics(r) => ready(ResponseKind::CreateTopics(create_topics::handle(
            broker, v, r,
        ))),
        RequestKind::DeleteTopics(r) => ready(ResponseKind::DeleteTopics(delete_topics::handle(
            broker, v, r,
        ))),
        RequestKind::CreatePartitions(r) => ready(ResponseKind::CreatePartitions(
            create_partitions::handle(broker, r),
        )),
        RequestKind::DescribeConfigs(r) => ready(ResponseKind::DescribeConfigs(
            describe_configs::handle(broker, v, r),
        )),
        RequestKind::IncrementalAlterConfigs(r) => ready(ResponseKind::IncrementalAlterConfigs(
            incremental_alter_configs::handle(broker, r),
        )),
        RequestKind::DescribeCluster(r) => ready(ResponseKind::DescribeCluster(
            describe_cluster::handle(broker, r),
        )),
        RequestKind::DeleteRecords(r) => delete_records::handle(broker, r),
        other => {
            // Only advertised APIs reach here (the codec rejects the rest); keep the connection safe.
            tracing::warn!(request = ?std::mem::discriminant(&other), "request for an API without a handler");
            Box::pin(std::future::ready(None))
        }
    }
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
