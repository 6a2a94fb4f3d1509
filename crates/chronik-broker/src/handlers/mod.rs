//! One handler per Kafka API. `dispatch` runs the synchronous part of a request at once (so
//! produce appends happen in the order requests arrived on the connection) and returns a future
//! for the rest (waiting for fsync, long-poll fetch). `None` means no response (acks=0).

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
mod api_versions;
mod config_changes;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_transactions;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
mod txn_offset_commit;

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

/// Wraps an async handler into a `ResponseFuture`.
macro_rules! later {
    ($broker:expr, |$b:ident| $body:expr, $kind:ident) => {{
        let $b = Arc::clone($broker);
        Box::pin(async move { Some(ResponseKind::$kind($body.await)) })
    }};
}

/// Handles one decoded request; `client_host` is the peer address as Kafka reports it.
pub fn dispatch(broker: &Arc<Broker>, req: DecodedRequest, client_host: &str) -> ResponseFuture {
    let v = req.header.request_api_version;
    let client_id = req
        .header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    metrics::counter!("chronik_requests_total", "api" => chronik_protocol::versions::api_name(req.api_key))
        .increment(1);
    match req.body {
        RequestKind::ApiVersions(_) => ready(ResponseKind::ApiVersions(api_versions_response())),
        RequestKind::Metadata(r) => ready(ResponseKind::Metadata(metadata::handle(broker, v, r))),
        RequestKind::Produce(r) => produce::handle(broker, v, r),
        RequestKind::Fetch(r) => later!(broker, |b| fetch::handle(&b, v, r), Fetch),
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
        RequestKind::AlterConfigs(r) => {
            ready(ResponseKind::AlterConfigs(alter_configs::handle(broker, r)))
        }
        RequestKind::IncrementalAlterConfigs(r) => ready(ResponseKind::IncrementalAlterConfigs(
            incremental_alter_configs::handle(broker, r),
        )),
        RequestKind::DescribeCluster(r) => ready(ResponseKind::DescribeCluster(
            describe_cluster::handle(broker, r),
        )),
        RequestKind::DeleteRecords(r) => delete_records::handle(broker, r),
        RequestKind::OffsetForLeaderEpoch(r) => ready(ResponseKind::OffsetForLeaderEpoch(
            offset_for_leader_epoch::handle(broker, r),
        )),
        RequestKind::InitProducerId(r) => {
            later!(
                broker,
                |b| init_producer_id::handle(&b, v, r),
                InitProducerId
            )
        }
        RequestKind::AddPartitionsToTxn(r) => later!(
            broker,
            |b| add_partitions_to_txn::handle(&b, v, r),
            AddPartitionsToTxn
        ),
        RequestKind::AddOffsetsToTxn(r) => later!(
            broker,
            |b| add_offsets_to_txn::handle(&b, v, r),
            AddOffsetsToTxn
        ),
        RequestKind::EndTxn(r) => later!(broker, |b| end_txn::handle(&b, v, r), EndTxn),
        RequestKind::TxnOffsetCommit(r) => later!(
            broker,
            |b| txn_offset_commit::handle(&b, v, r),
            TxnOffsetCommit
        ),
        RequestKind::DescribeTransactions(r) => later!(
            broker,
            |b| describe_transactions::handle(&b, r),
            DescribeTransactions
        ),
        RequestKind::ListTransactions(r) => later!(
            broker,
            |b| list_transactions::handle(&b, r),
            ListTransactions
        ),
        RequestKind::FindCoordinator(r) => ready(ResponseKind::FindCoordinator(
            find_coordinator::handle(broker, v, r),
        )),
        RequestKind::JoinGroup(r) => {
            let host = client_host.to_string();
            later!(
                broker,
                |b| join_group::handle(&b, v, r, client_id, host),
                JoinGroup
            )
        }
        RequestKind::SyncGroup(r) => later!(broker, |b| sync_group::handle(&b, v, r), SyncGroup),
        RequestKind::Heartbeat(r) => later!(broker, |b| heartbeat::handle(&b, r), Heartbeat),
        RequestKind::LeaveGroup(r) => later!(broker, |b| leave_group::handle(&b, v, r), LeaveGroup),
        RequestKind::OffsetCommit(r) => {
            later!(broker, |b| offset_commit::handle(&b, r), OffsetCommit)
        }
        RequestKind::OffsetFetch(r) => {
            later!(broker, |b| offset_fetch::handle(&b, v, r), OffsetFetch)
        }
        RequestKind::DescribeGroups(r) => later!(
            broker,
            |b| describe_groups::handle(&b, v, r),
            DescribeGroups
        ),
        RequestKind::ListGroups(r) => later!(broker, |b| list_groups::handle(&b, v, r), ListGroups),
        RequestKind::DeleteGroups(r) => {
            later!(broker, |b| delete_groups::handle(&b, r), DeleteGroups)
        }
        RequestKind::OffsetDelete(r) => {
            later!(broker, |b| offset_delete::handle(&b, r), OffsetDelete)
        }
        other => {
            // Only advertised APIs reach here (the codec rejects the rest); keep the connection safe.
            tracing::warn!(request = ?std::mem::discriminant(&other), "request for an API without a handler");
            Box::pin(std::future::ready(None))
        }
    }
}

/// Authorized operations as Kafka reports them without an authorizer: every operation the
/// resource supports, one bit per `AclOperation` code.
pub(crate) mod authorized {
    /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    pub const TOPIC: i32 = 3576;
    /// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
    /// IDEMPOTENT_WRITE.
    pub const CLUSTER: i32 = 8096;
    /// READ, DELETE, DESCRIBE.
    pub const GROUP: i32 = 328;
    /// Kafka's "not provided" (the request did not ask).
    pub const NOT_PROVIDED: i32 = i32::MIN;
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
