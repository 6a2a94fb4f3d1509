//! Writing coordinator records and transaction markers to partitions, and reading internal
//! topics (`__consumer_offsets`, `__transaction_state`) back: records as Kafka records (key and
//! value bytes) in uncompressed batches, one batch per partition per operation. A batch is
//! stored when it is fsynced (single node) or committed by the partition's Raft group.

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group_commit::FlushWait;
use crate::partition::Partition;
use crate::topics::Topic;
use bytes::{Bytes, BytesMut};
use chronik_replication::types::{Applied, NotAppended};
use chronik_replication::RecordBatch;
use chronik_storage::log::read_batches;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Bytes read per step while loading a partition.
const LOAD_READ_BYTES: usize = 1024 * 1024;

/// A record read back from an internal topic, with what its batch says about it.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub producer_id: i64,
    pub transactional: bool,
    pub control: bool,
}

/// A key and an optional value (`None`: a tombstone).
pub type KeyValue = (Vec<u8>, Option<Vec<u8>>);

/// Encodes records of one partition as one record batch; with `producer` (id, epoch), as a
/// transactional batch of that producer (transactional offset commits). (The encoder starts a
/// new batch whenever `offset - sequence` changes, so each record's sequence follows its
/// offset from the batch's base sequence -1: one batch, as a replicated log needs one per
/// entry, and no sequence number to check.)
pub fn encode_batch(
    records: &[KeyValue],
    producer: Option<(i64, i16)>,
    now_ms: i64,
) -> Result<Vec<u8>, BrokerError> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let kafka_records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).unwrap_or(0),
            sequence: i32::try_from(i).unwrap_or(0) - 1,
            timestamp: now_ms,
            key: Some(Bytes::from(key.clone())),
            value: value.clone().map(Bytes::from),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        kafka_records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| BrokerError::InvalidRequest(format!("cannot encode internal records: {e}")))?;
    Ok(buf.to_vec())
}

/// A batch on its way to being stored.
pub enum PendingStore {
    Flushing(FlushWait),
    Proposed(
        Pin<
            Box<
                dyn Future<Output = Result<Applied, chronik_replication::proposer::ProposeError>>
                    + Send,
            >,
        >,
    ),
}

impl PendingStore {
    pub async fn wait(self) -> Result<(), BrokerError> {
        match self {
            Self::Flushing(w) => w.wait().await.map(|_| ()).map_err(BrokerError::FlushFailed),
            Self::Proposed(f) => match f.await {
                Ok(Applied::NotAppended(NotAppended::InvalidProducerEpoch)) => Err(
                    BrokerError::InvalidRequest("the producer epoch is no longer current".into()),
                ),
                Ok(Applied::NotAppended(NotAppended::CoordinatorFenced)) => {
                    Err(BrokerError::InvalidRequest(
                        "a newer transaction coordinator wrote this producer's markers".into(),
                    ))
                }
                Ok(_) => Ok(()),
                Err(e) => Err(BrokerError::ControllerUnavailable(e.to_string())),
            },
        }
    }
}

/// Waits until every store in `pending` is done, at most `timeout_ms`: a coordinator holds its
/// state meanwhile, so past that it answers COORDINATOR_NOT_AVAILABLE (the client retries), as
/// Kafka's coordinators do when their append times out.
pub async fn wait_all(
    pending: Vec<PendingStore>,
    timeout_ms: u64,
    what: &str,
) -> Result<(), BrokerError> {
    let all = async {
        for p in pending {
            p.wait().await?;
        }
        Ok(())
    };
    tokio::time::timeout(std::time::Duration::from_millis(timeout_ms), all)
        .await
        .unwrap_or_else(|_| {
            Err(BrokerError::CoordinatorNotAvailable(format!(
                "{what} not stored within {timeout_ms} ms"
            )))
        })
}

/// Starts storing `batch` in `p`: appended and queued for fsync, or proposed to its Raft group.
pub fn start_store(
    broker: &Broker,
    p: &Arc<Partition>,
    mut batch: Vec<u8>,
    now_ms: i64,
) -> Result<PendingStore, BrokerError> {
    if let Some(proposer) = p.proposer() {
        return Ok(PendingStore::Proposed(Box::pin(
            proposer.propose(RecordBatch(batch.into())),
        )));
    }
    p.with_log(|l| l.append(&mut batch, now_ms))?;
    Ok(PendingStore::Flushing(
        broker.group_commit.request(Arc::clone(p)),
    ))
}

/// What `load` reads from every partition of `topic` (none when it does not exist yet), in log
/// order per partition.
pub fn load_all<T>(
    topic: Option<&Topic>,
    load: impl Fn(&Partition) -> Result<Vec<T>, BrokerError>,
) -> Result<Vec<T>, BrokerError> {
    let Some(topic) = topic else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for p in &topic.partitions {
        out.extend(load(p)?);
    }
    Ok(out)
}

/// A coordinator whose state lives in an internal topic and that, in a cluster, coordinates
/// the keys of the partitions this node leads.
pub trait PartitionCoordinator: Send + Sync + 'static {
    fn is_loaded(&self, partition: i32) -> bool;
    /// Rebuilds the state of one partition from its log (it is led here, everything committed).
    fn load(&self, partition: &Partition) -> impl Future<Output = ()> + Send;
    /// Drops the state of one partition (no longer led here).
    fn unload(&self, partition: i32) -> impl Future<Output = ()> + Send;
}

/// Cluster mode: follows the leadership of one partition of a coordinator's internal topic.
/// When this node becomes its leader and has applied its whole log as it was when the
/// leadership began (the leader's log holds every committed entry, so everything committed
/// before is then applied), the coordinator loads it; when it stops leading, it is unloaded.
/// Ends when the partition's Raft group stops.
///
/// "An entry of its own term applied" is not enough: a node restarted with a committed vote for
/// itself resumes leading the same term without a new entry, and the first entry it applies
/// may be far below what was committed before the restart.
pub async fn follow_leadership<C: PartitionCoordinator>(c: Arc<C>, partition: Arc<Partition>) {
    let Some(raft) = partition.raft().cloned() else {
        return;
    };
    let p = partition.tp.partition;
    let mut metrics = raft.metrics();
    // The leader's last log index when its current leadership began (None: not leading).
    let mut led_from: Option<(u64, u64)> = None; // (term, last log index)
    loop {
        let (leading, caught_up) = {
            let m = metrics.borrow();
            let leading = m.state.is_leader();
            led_from = match led_from {
                Some((term, index)) if leading && term == m.current_term => Some((term, index)),
                _ if leading => Some((m.current_term, m.last_log_index.unwrap_or(0))),
                _ => None,
            };
            let applied = m.last_applied.map(|a| a.index);
            (
                leading,
                led_from.is_some_and(|(_, index)| index == 0 || applied >= Some(index)),
            )
        };
        let loaded = c.is_loaded(p);
        if leading && caught_up && !loaded {
            c.load(&partition).await;
        } else if !leading && loaded {
            c.unload(p).await;
        }
        if metrics.changed().await.is_err() {
            c.unload(p).await;
            return;
        }
    }
}

/// Reads every record of one partition up to its high watermark, in log order.
pub fn read_partition(p: &Partition) -> Result<Vec<StoredRecord>, BrokerError> {
    let mut out = Vec::new();
    let (mut offset, hw, _) = Broker::offsets(p);
    while offset < hw {
        let Some(slice) = p.with_log(|l| l.read_slice(offset))? else {
            break;
        };
        let data = read_batches(&slice, hw, LOAD_READ_BYTES, true)?;
        if data.is_empty() {
            break;
        }
        let mut bytes = Bytes::from(data);
        while !bytes.is_empty() {
            let set = RecordBatchDecoder::decode(&mut bytes)
                .map_err(|e| BrokerError::InvalidRequest(format!("{}: {e}", p.tp)))?;
            for rec in set.records {
                offset = offset.max(rec.offset + 1);
                out.push(StoredRecord {
                    offset: rec.offset,
                    key: rec.key,
                    value: rec.value,
                    producer_id: rec.producer_id,
                    transactional: rec.transactional,
                    control: rec.control,
                });
            }
        }
    }
    Ok(out)
}

/// The marker type of a control record's key (version int16, type int16: 0 abort, 1 commit).
pub fn control_commit(key: Option<&[u8]>) -> Option<bool> {
    let code = i16::from_be_bytes(key?.get(2..4)?.try_into().ok()?);
    chronik_storage::control::ControlType::from_code(code)
        .map(|t| t == chronik_storage::control::ControlType::Commit)
}
