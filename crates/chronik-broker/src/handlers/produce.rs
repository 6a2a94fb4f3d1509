//! Produce (key 0): validate each partition's batches, append them in arrival order, then wait
//! for the group-commit fsync before answering (acks=1 and acks=-1; acks=0 gets no response).

use super::{topic_name, ResponseFuture};
use crate::broker::{now_ms, Broker};
use crate::error::{code, BrokerError, NONE};
use crate::group_commit::FlushWait;
use crate::txn::Verification;
use chronik_replication::proposer::ProposeError;
use chronik_replication::types::NotAppended;
use chronik_replication::{Applied, RecordBatch};
use chronik_storage::batch::{self, BatchHeader};
use chronik_storage::config::TimestampType;
use chronik_storage::{AppendInfo, BatchError, StorageError};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use std::sync::Arc;
use std::time::Duration;

/// A batch proposed to the partition's Raft group, resolving once committed.
type Proposed =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Applied, ProposeError>> + Send>>;

/// One partition's outcome so far: appended (awaiting fsync), proposed (awaiting the Raft
/// commit), or failed.
enum Outcome {
    Appended(AppendInfo, i64, FlushWait),
    Proposed(Vec<Proposed>, Option<i64>, i64, Duration),
    Failed(i16, Option<String>),
    /// Refused because of some records (KIP-467): the code, the message and their indexes.
    RecordErrors(i16, String, Vec<i32>),
    /// A transactional batch being verified with its coordinator (cluster mode); resolves to
    /// the outcome of its proposal.
    Verifying(std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>),
}

/// The outcome of a batch that failed validation.
fn invalid(e: BatchError, tp: &chronik_types::TopicPartition) -> Outcome {
    metrics::counter!("chronik_produce_rejected_batches_total").increment(1);
    let code = BrokerError::Storage(StorageError::Batch(e.clone())).code();
    match e {
        BatchError::KeylessRecordForCompactedTopic(records) => Outcome::RecordErrors(
            code,
            format!("Compacted topic cannot accept message without key in topic partition {tp}."),
            records,
        ),
        e => Outcome::Failed(code, Some(e.to_string())),
    }
}

pub fn handle(broker: &Arc<Broker>, _version: i16, req: ProduceRequest) -> ResponseFuture {
    let acks = req.acks;
    let transactional_id = req.transactional_id.as_ref().map(|t| t.0.to_string());
    let txn = transactional_id.as_deref();
    let timeout = Duration::from_millis(u64::try_from(req.timeout_ms.max(0)).unwrap_or(0));
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for td in req.topic_data {
        let name = td.name.0.as_str().to_string();
        let topic = broker.topic(&name);
        let mut parts = Vec::with_capacity(td.partition_data.len());
        for pd in td.partition_data {
            let outcome = if !matches!(acks, -1..=1) {
                Outcome::Failed(BrokerError::InvalidRequiredAcks(acks).code(), None)
            } else if topic.as_ref().is_some_and(|t| t.is_internal()) {
                // Only the broker writes internal topics (Kafka: "Cannot append to internal topic").
                Outcome::Failed(
                    code(ResponseError::InvalidTopicException),
                    Some(format!("Cannot append to internal topic {name}")),
                )
            } else {
                match topic.as_ref().and_then(|t| t.partition(pd.index)) {
                    None if topic.as_ref().is_some_and(|t| t.has_partition(pd.index)) => {
                        Outcome::Failed(code(ResponseError::NotLeaderOrFollower), None)
                    }
                    None => Outcome::Failed(broker.unknown_topic_error().code(), None),
                    Some(p) if p.proposer().is_some() => {
                        propose(broker, p, pd.records, acks, timeout, txn)
                    }
                    Some(p) => append(broker, p, pd.records, acks, txn),
                }
            };
            parts.push((pd.index, outcome));
        }
        topics.push((name, parts));
    }
    if acks == 0 {
        return Box::pin(std::future::ready(None));
    }
    Box::pin(async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (name, parts) in topics {
            let mut partition_responses = Vec::with_capacity(parts.len());
            for (index, outcome) in parts {
                let outcome = match outcome {
                    Outcome::Verifying(verified) => verified.await,
                    other => other,
                };
                partition_responses.push(finish(index, outcome).await);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic_name(&name))
                    .with_partition_responses(partition_responses),
            );
        }
        Some(ResponseKind::Produce(
            ProduceResponse::default().with_responses(responses),
        ))
    })
}

/// Cluster mode: validates the batches and queues them to the partition's Raft leader; the
/// answer comes after the commit (a majority has each batch on disk), for acks=1 too. A
/// transactional batch that would open a transaction here is first verified with the
/// transaction's coordinator (KIP-890 part 1, see `txn::guards`).
fn propose(
    broker: &Arc<Broker>,
    p: &Arc<crate::partition::Partition>,
    records: Option<bytes::Bytes>,
    acks: i16,
    timeout: Duration,
    transactional_id: Option<&str>,
) -> Outcome {
    let Some(proposer) = p.proposer().filter(|_| p.accepts_writes()) else {
        return Outcome::Failed(code(ResponseError::NotLeaderOrFollower), None);
    };
    if acks == -1 {
        if let Some(short) = not_enough_replicas(broker, p) {
            return Outcome::Failed(code(ResponseError::NotEnoughReplicas), Some(short));
        }
    }
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Outcome::Failed(
            code(ResponseError::InvalidRecord),
            Some("no record batch".into()),
        );
    };
    let (max, compacted, log_append, log_start) = p.with_log(|l| {
        let c = l.config();
        (
            c.max_message_bytes,
            c.cleanup_compact,
            c.timestamp_type == TimestampType::LogAppendTime,
            l.log_start_offset(),
        )
    });
    let batches = match validate_producer_batches(&records, max, compacted) {
        Ok(b) => b,
        Err(e) => return invalid(e, &p.tp),
    };
    let now = now_ms();
    let queue = Queue {
        records,
        batches,
        log_append: log_append.then_some(now),
        log_start,
        timeout,
    };
    let Some(h) = queue
        .batches
        .iter()
        .map(|(_, h)| *h)
        .find(BatchHeader::is_transactional)
    else {
        return queue.propose(proposer);
    };
    let Some(id) = transactional_id.map(str::to_string) else {
        return Outcome::Failed(
            code(ResponseError::InvalidTxnState),
            Some("a transactional batch needs the request's transactional id".into()),
        );
    };
    let ongoing = p.with_log(|l| l.transactions().is_ongoing(h.producer_id));
    let token = match p
        .txn_guards()
        .admit(h.producer_id, ongoing, || queue.propose(proposer))
    {
        Ok(outcome) => return outcome,
        Err(token) => token,
    };
    let (broker, p) = (Arc::clone(broker), Arc::clone(p));
    Outcome::Verifying(Box::pin(async move {
        let _lane = p.txn_guards().lane().await;
        let producer = (h.producer_id, h.producer_epoch);
        let verdict = broker
            .txns
            .verify_anywhere(&broker, &id, producer, &p.tp)
            .await;
        let verified = matches!(verdict, Ok(Verification::InTransaction));
        let proposed =
            p.txn_guards()
                .complete(h.producer_id, token, verified, || match p.proposer() {
                    Some(proposer) => queue.propose(proposer),
                    None => Outcome::Failed(code(ResponseError::NotLeaderOrFollower), None),
                });
        match (proposed, verdict) {
            (Some(outcome), _) => outcome,
            (None, Err(e)) => Outcome::Failed(
                // What Kafka answers a produce whose verification could not be done: retriable.
                code(ResponseError::NotEnoughReplicas),
                Some(format!("could not verify the transaction: {e}")),
            ),
            (None, Ok(found)) => {
                // Verified, but a marker came in between: the transaction it was in ended.
                let found = if verified {
                    Verification::NotInTransaction
                } else {
                    found
                };
                let (error, reason) = refusal(found, &p.tp, &h).unwrap_or((
                    code(ResponseError::InvalidTxnState),
                    format!("the transaction of partition {} ended", p.tp),
                ));
                Outcome::Failed(error, Some(reason))
            }
        }
    }))
}

/// Validated batches of one partition, ready to be proposed.
struct Queue {
    records: bytes::Bytes,
    batches: Vec<(usize, BatchHeader)>,
    /// `Some(now)` for a LogAppendTime topic.
    log_append: Option<i64>,
    log_start: i64,
    timeout: Duration,
}

impl Queue {
    /// Queues every batch to the Raft leader now, in order.
    fn propose(&self, proposer: &chronik_replication::proposer::Proposer) -> Outcome {
        let mut proposed: Vec<Proposed> = Vec::with_capacity(self.batches.len());
        for (pos, h) in &self.batches {
            let range = *pos..*pos + h.size_bytes();
            if range.end > self.records.len() {
                return Outcome::Failed(code(ResponseError::CorruptMessage), None);
            }
            // The request's bytes are shared, not copied, unless LogAppendTime rewrites them.
            let one = match self.log_append {
                Some(now) => {
                    let mut owned = self.records.slice(range).to_vec();
                    batch::set_log_append_time(&mut owned, now);
                    bytes::Bytes::from(owned)
                }
                None => self.records.slice(range),
            };
            metrics::counter!("chronik_produce_bytes_total").increment(one.len() as u64);
            proposed.push(Box::pin(proposer.propose(RecordBatch(one))));
        }
        Outcome::Proposed(proposed, self.log_append, self.log_start, self.timeout)
    }
}

fn append(
    broker: &Broker,
    p: &Arc<crate::partition::Partition>,
    records: Option<bytes::Bytes>,
    acks: i16,
    transactional_id: Option<&str>,
) -> Outcome {
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Outcome::Failed(
            code(ResponseError::InvalidRecord),
            Some("no record batch".into()),
        );
    };
    let mut data = records.to_vec();
    let (max, compacted) =
        p.with_log(|l| (l.config().max_message_bytes, l.config().cleanup_compact));
    let batches = match validate_producer_batches(&data, max, compacted) {
        Ok(b) => b,
        Err(e) => return invalid(e, &p.tp),
    };
    // One lock for the transaction check, the append and the log start offset the response
    // reports. A transaction's marker is appended under the same lock after its coordinator
    // stopped counting the transaction as open, so a batch checked here can never land after
    // the marker of its transaction.
    let appended = p.with_log(|l| {
        let ongoing = |pid| l.transactions().is_ongoing(pid);
        if let Some(refused) = unverified_txn_batch(broker, transactional_id, p, &batches, ongoing)
        {
            return Err(Rejected::Transaction(refused));
        }
        l.append_validated(&mut data, &batches, now_ms())
            .map(|info| (info, l.log_start_offset()))
            .map_err(Rejected::Storage)
    });
    match appended {
        Err(Rejected::Transaction((error, reason))) => Outcome::Failed(error, Some(reason)),
        Ok((info, log_start)) => {
            metrics::counter!("chronik_produce_bytes_total").increment(data.len() as u64);
            if acks == 0 {
                broker.group_commit.flush_later(Arc::clone(p));
                Outcome::Failed(NONE, None)
            } else {
                Outcome::Appended(info, log_start, broker.group_commit.request(Arc::clone(p)))
            }
        }
        Err(Rejected::Storage(e)) => {
            tracing::warn!(partition = %p.tp, error = %e, "append failed");
            let e = BrokerError::Storage(e);
            Outcome::Failed(e.code(), Some(e.message()))
        }
    }
}

/// Why an append was refused.
enum Rejected {
    /// By the transaction check: the error code and why.
    Transaction((i16, String)),
    Storage(StorageError),
}

/// KIP-890 part 1: a transactional batch that would open a transaction in this partition (its
/// producer has none open here) is accepted only if the producer's open transaction includes
/// the partition, as its coordinator knows it. This keeps a late batch of a transaction that
/// already ended from opening one nobody will ever end (a "hanging" transaction that would
/// hold the last stable offset back for good). `Some((error, reason))` when the batch is
/// refused.
fn unverified_txn_batch(
    broker: &Broker,
    transactional_id: Option<&str>,
    p: &crate::partition::Partition,
    batches: &[(usize, BatchHeader)],
    ongoing: impl Fn(i64) -> bool,
) -> Option<(i16, String)> {
    let h = batches
        .iter()
        .map(|(_, h)| h)
        .find(|h| h.is_transactional() && !ongoing(h.producer_id))?;
    let Some(id) = transactional_id else {
        return Some((
            code(ResponseError::InvalidTxnState),
            "a transactional batch needs the request's transactional id".into(),
        ));
    };
    let producer = (h.producer_id, h.producer_epoch);
    let found = broker
        .txns
        .verify(broker, id, producer, &p.tp.topic, p.tp.partition);
    refusal(found, &p.tp, h)
}

/// The error a produce gets for what verification found (`None`: accepted). A fenced
/// producer gets INVALID_PRODUCER_EPOCH, as Kafka answers a zombie's produce.
fn refusal(
    found: Verification,
    tp: &chronik_types::TopicPartition,
    h: &BatchHeader,
) -> Option<(i16, String)> {
    match found {
        Verification::InTransaction | Verification::Elsewhere => None,
        Verification::NotInTransaction => Some((
            code(ResponseError::InvalidTxnState),
            format!(
                "partition {tp} is not in an open transaction of producer {} epoch {}",
                h.producer_id, h.producer_epoch
            ),
        )),
        Verification::Fenced => Some((
            code(ResponseError::InvalidProducerEpoch),
            format!(
                "producer {} epoch {} is not the transactional id's current producer",
                h.producer_id, h.producer_epoch
            ),
        )),
    }
}

/// Checks what a producer sent: whole valid batches, base offset 0, within `max.message.bytes`,
/// and for compacted topics a key on every record (Kafka refuses keyless records there).
fn validate_producer_batches(
    data: &[u8],
    max_message_bytes: i32,
    compacted: bool,
) -> Result<Vec<(usize, BatchHeader)>, BatchError> {
    let max = usize::try_from(max_message_bytes).unwrap_or(0);
    let batches = batch::split_and_validate(data)?;
    for (pos, h) in &batches {
        if h.base_offset != 0 {
            return Err(BatchError::NonZeroBaseOffset(h.base_offset));
        }
        if h.is_control() {
            return Err(BatchError::ControlBatchFromClient);
        }
        if h.size_bytes() > max {
            return Err(BatchError::TooLarge {
                size: h.size_bytes(),
                max,
            });
        }
        let whole = data.get(*pos..*pos + h.size_bytes()).unwrap_or_default();
        if compacted {
            let keyless = batch::keyless_record_indexes(whole)?;
            if !keyless.is_empty() {
                return Err(BatchError::KeylessRecordForCompactedTopic(keyless));
            }
        }
        if h.records_count != h.last_offset_delta + 1 {
            return Err(BatchError::InvalidRecordCount);
        }
    }
    Ok(batches)
}

async fn finish(index: i32, outcome: Outcome) -> PartitionProduceResponse {
    let base = PartitionProduceResponse::default().with_index(index);
    match outcome {
        // Resolved by the caller before it finishes a partition.
        Outcome::Verifying(_) => base
            .with_error_code(code(ResponseError::UnknownServerError))
            .with_base_offset(-1),
        // record_errors and error_message exist from Produce v8 (KIP-467); the codec leaves
        // them out of older versions.
        Outcome::RecordErrors(error_code, message, records) => base
            .with_error_code(error_code)
            .with_base_offset(-1)
            .with_error_message(Some(super::str_bytes(message)))
            .with_record_errors(
                records
                    .into_iter()
                    .map(|i| BatchIndexAndErrorMessage::default().with_batch_index(i))
                    .collect(),
            ),
        Outcome::Failed(error_code, message) => base
            .with_error_code(error_code)
            .with_base_offset(-1)
            .with_error_message(message.map(super::str_bytes)),
        Outcome::Proposed(proposed, log_append_time, log_start, timeout) => {
            let all = futures_all(proposed);
            match tokio::time::timeout(timeout, all).await {
                Ok(Ok(base_offset)) => base
                    .with_base_offset(base_offset)
                    .with_log_start_offset(log_start)
                    .with_log_append_time_ms(log_append_time.unwrap_or(-1)),
                Ok(Err((c, message))) => base
                    .with_error_code(c)
                    .with_base_offset(-1)
                    .with_error_message(Some(super::str_bytes(message))),
                Err(_) => base
                    .with_error_code(code(ResponseError::RequestTimedOut))
                    .with_base_offset(-1),
            }
        }
        Outcome::Appended(info, log_start, wait) => match wait.wait().await {
            Ok(_) => base
                .with_base_offset(info.base_offset)
                .with_log_start_offset(log_start)
                .with_log_append_time_ms(info.log_append_time_ms.unwrap_or(-1)),
            Err(message) => base
                .with_error_code(code(ResponseError::KafkaStorageError))
                .with_base_offset(-1)
                .with_error_message(Some(super::str_bytes(message))),
        },
    }
}

/// Waits for every proposed batch; the base offset of the first is the response's. A retried
/// batch of an idempotent producer answers the offsets it got the first time.
async fn futures_all(proposed: Vec<Proposed>) -> Result<i64, (i16, String)> {
    let mut first = None;
    for p in proposed {
        let applied = p.await.map_err(|e| {
            let c = match e {
                ProposeError::NotLeader(_) | ProposeError::Stopped => {
                    code(ResponseError::NotLeaderOrFollower)
                }
                ProposeError::Failed(_) => code(ResponseError::KafkaStorageError),
            };
            (c, e.to_string())
        })?;
        let base = match applied {
            Applied::Batch { base_offset, .. }
            | Applied::NotAppended(NotAppended::Duplicate { base_offset, .. }) => base_offset,
            Applied::NotAppended(NotAppended::OutOfOrderSequence) => {
                return Err((
                    code(ResponseError::OutOfOrderSequenceNumber),
                    "out of order sequence number".into(),
                ))
            }
            Applied::NotAppended(NotAppended::InvalidProducerEpoch) => {
                return Err((
                    code(ResponseError::InvalidProducerEpoch),
                    "the producer's epoch is older than its current one".into(),
                ))
            }
            other => {
                return Err((
                    code(ResponseError::KafkaStorageError),
                    format!("a record batch applied as {other:?}"),
                ))
            }
        };
        first.get_or_insert(base);
    }
    first.ok_or_else(|| (code(ResponseError::InvalidRecord), "no record batch".into()))
}

/// acks=all on a partition with fewer in-sync replicas than its `min.insync.replicas`: why.
fn not_enough_replicas(broker: &Broker, p: &crate::partition::Partition) -> Option<String> {
    let node = broker.cluster.as_ref()?;
    let replicas = node
        .with_image(|i| i.replicas(&p.tp.topic, p.tp.partition).map(<[u64]>::to_vec))
        .unwrap_or_default();
    let isr = p.in_sync_replicas(node.node_id, &replicas, now_ms());
    let min = p.with_log(|l| l.config().min_insync_replicas);
    (i32::try_from(isr.len()).unwrap_or(i32::MAX) < min).then(|| {
        format!(
            "The size of the current ISR {isr:?} is insufficient to satisfy the min.isr requirement of {min} for partition {}",
            p.tp
        )
    })
}
