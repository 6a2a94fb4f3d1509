//! Fetch (key 1): reads whole stored batches below the high watermark (`read_committed`: below
//! the last stable offset, with the aborted transactions in the range read), long-polls until
//! `min_bytes` arrive or `max_wait_ms` passes, and keeps incremental fetch sessions (KIP-227).

use super::topic_name;
use crate::broker::{now_ms, Broker};
use crate::error::{code, BrokerError, NONE};
use crate::fetch_session::{FetchTarget, SentState, SessionContext};
use chronik_storage::log::read_batches;
use chronik_types::limits::FETCH_WAIT_MS_MAX;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

/// Fetch v13+ names topics by id.
const TOPIC_ID_VERSION: i16 = 13;
/// `isolation_level` of a `read_committed` fetch.
pub const READ_COMMITTED: i8 = 1;

/// A partition's answer before it is put in the response.
struct PartitionRead {
    target: FetchTarget,
    error_code: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    records: bytes::Bytes,
    /// `read_committed`: the aborted transactions with records in what was read.
    aborted: Option<Vec<AbortedTransaction>>,
}

pub async fn handle(broker: &Arc<Broker>, version: i16, req: FetchRequest) -> FetchResponse {
    let (targets, mut unknown) = resolve_targets(broker, version, &req);
    let forgotten = resolve_forgotten(broker, version, &req);
    let session = broker
        .fetch_sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .begin(
            req.session_id,
            req.session_epoch,
            targets,
            &forgotten,
            now_ms(),
        );
    let ctx = match session {
        Ok(ctx) => ctx,
        Err(e) => return FetchResponse::default().with_error_code(e.code()),
    };
    let wait_ms = u64::try_from(req.max_wait_ms)
        .unwrap_or(0)
        .min(FETCH_WAIT_MS_MAX);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
    let reads = loop {
        let notified = broker.data_arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let reads = read_all(
            broker,
            &ctx.targets,
            max_bytes,
            req.isolation_level == READ_COMMITTED,
        );
        let bytes: usize = reads.iter().map(|r| r.records.len()).sum();
        let any_error = reads.iter().any(|r| r.error_code != NONE) || !unknown.is_empty();
        if bytes >= min_bytes.max(1) || any_error || broker.is_shutting_down() {
            break reads;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            break reads;
        }
    };
    let mut responses = build_responses(broker, version, &ctx, reads);
    responses.append(&mut unknown);
    FetchResponse::default()
        .with_session_id(ctx.session_id)
        .with_responses(responses)
}

/// Maps the request's topics to targets; unknown topics become error entries right away.
fn resolve_targets(
    broker: &Broker,
    version: i16,
    req: &FetchRequest,
) -> (Vec<FetchTarget>, Vec<FetchableTopicResponse>) {
    let mut targets = Vec::new();
    let mut unknown = Vec::new();
    for ft in &req.topics {
        let topic = if version >= TOPIC_ID_VERSION {
            broker.topic_by_id(ft.topic_id)
        } else {
            broker.topic(ft.topic.0.as_str())
        };
        let Some(topic) = topic else {
            let err = if !broker.metadata_ready() {
                // A topic this starting cluster node has not learnt yet may exist.
                code(ResponseError::NotLeaderOrFollower)
            } else if version >= TOPIC_ID_VERSION {
                code(ResponseError::UnknownTopicId)
            } else {
                code(ResponseError::UnknownTopicOrPartition)
            };
            let parts = ft
                .partitions
                .iter()
                .map(|p| error_partition(p.partition, err))
                .collect();
            unknown.push(
                FetchableTopicResponse::default()
                    .with_topic(ft.topic.clone())
                    .with_topic_id(ft.topic_id)
                    .with_partitions(parts),
            );
            continue;
        };
        for p in &ft.partitions {
            targets.push(FetchTarget {
                topic: topic.record.name.clone(),
                topic_id: topic.record.topic_id,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
            });
        }
    }
    (targets, unknown)
}

fn resolve_forgotten(broker: &Broker, version: i16, req: &FetchRequest) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for f in &req.forgotten_topics_data {
        let name = if version >= TOPIC_ID_VERSION {
            broker
                .topic_by_id(f.topic_id)
                .map(|t| t.record.name.clone())
        } else {
            Some(f.topic.0.as_str().to_string())
        };
        if let Some(name) = name {
            out.extend(f.partitions.iter().map(|p| (name.clone(), *p)));
        }
    }
    out
}

fn error_partition(index: i32, error_code: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(error_code)
        .with_high_watermark(-1)
        .with_records(Some(bytes::Bytes::new()))
}

/// Reads every target within the response's `max_bytes`; only the first partition with data
/// may exceed it (KIP-74).
fn read_all(
    broker: &Broker,
    targets: &[FetchTarget],
    max_bytes: usize,
    read_committed: bool,
) -> Vec<PartitionRead> {
    let mut used = 0usize;
    targets
        .iter()
        .map(|t| {
            let budget = max_bytes.saturating_sub(used);
            let read = read_one(broker, t, budget, used == 0, read_committed);
            used += read.records.len();
            read
        })
        .collect()
}

fn read_one(
    broker: &Broker,
    t: &FetchTarget,
    budget: usize,
    min_one: bool,
    read_committed: bool,
) -> PartitionRead {
    let mut read = PartitionRead {
        target: t.clone(),
        error_code: NONE,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: bytes::Bytes::new(),
        aborted: None,
    };
    let partition = match broker.partition(&t.topic, t.partition) {
        Ok(p) => p,
        Err(e) => {
            read.error_code = e.code();
            return read;
        }
    };
    if !partition.serves_clients() {
        read.error_code = BrokerError::NotLeaderOrFollower.code();
        return read;
    }
    let (log_start, hw, _) = Broker::offsets(&partition);
    let lso = partition.with_log(|l| l.last_stable_offset());
    read.high_watermark = hw;
    read.last_stable_offset = lso;
    read.log_start_offset = log_start;
    let upper = if read_committed { lso } else { hw };
    if read_committed {
        read.aborted = Some(Vec::new());
    }
    let limit = usize::try_from(t.max_bytes).unwrap_or(0).min(budget);
    if limit == 0 && !min_one {
        return read;
    }
    let slice = partition.with_log(|l| {
        if l.is_offline() {
            return Err(BrokerError::Storage(
                chronik_storage::StorageError::LogOffline(l.dir().to_path_buf()),
            ));
        }
        l.read_slice(t.fetch_offset).map_err(BrokerError::from)
    });
    match slice.and_then(|s| match s {
        None => Ok(Vec::new()),
        Some(slice) => read_batches(&slice, upper, limit, min_one).map_err(BrokerError::from),
    }) {
        Ok(data) => {
            if read_committed && !data.is_empty() {
                let aborted = partition.with_log(|l| l.aborted_transactions(t.fetch_offset, upper));
                read.aborted = Some(
                    aborted
                        .iter()
                        .map(|a| {
                            AbortedTransaction::default()
                                .with_producer_id(a.producer_id.into())
                                .with_first_offset(a.first_offset)
                        })
                        .collect(),
                );
            }
            metrics::counter!("chronik_fetch_bytes_total").increment(data.len() as u64);
            read.records = bytes::Bytes::from(data);
        }
        Err(e) => read.error_code = e.code(),
    }
    read
}

fn build_responses(
    broker: &Broker,
    version: i16,
    ctx: &SessionContext,
    reads: Vec<PartitionRead>,
) -> Vec<FetchableTopicResponse> {
    let mut sessions = broker
        .fetch_sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut out: Vec<FetchableTopicResponse> = Vec::new();
    for r in reads {
        let state = SentState {
            high_watermark: r.high_watermark,
            last_stable_offset: r.last_stable_offset,
            log_start_offset: r.log_start_offset,
        };
        let send = sessions.should_send(
            ctx.session_id,
            &r.target.topic,
            r.target.partition,
            state,
            !r.records.is_empty() || r.error_code != NONE,
        );
        if ctx.incremental && !send {
            continue;
        }
        let pd = PartitionData::default()
            .with_partition_index(r.target.partition)
            .with_error_code(r.error_code)
            .with_high_watermark(r.high_watermark)
            .with_last_stable_offset(r.last_stable_offset)
            .with_log_start_offset(r.log_start_offset)
            .with_aborted_transactions(r.aborted)
            .with_records(Some(r.records));
        let same_topic = out
            .last_mut()
            .filter(|t| t.topic_id == r.target.topic_id && t.topic.0.as_str() == r.target.topic);
        match same_topic {
            Some(t) => t.partitions.push(pd),
            None => {
                let mut t = FetchableTopicResponse::default().with_partitions(vec![pd]);
                if version >= TOPIC_ID_VERSION {
                    t.topic_id = r.target.topic_id;
                } else {
                    t.topic = topic_name(&r.target.topic);
                }
                out.push(t);
            }
        }
    }
    out
}
