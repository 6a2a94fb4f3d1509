//! The openraft type configuration shared by every Raft group of a node (the partitions' and
//! the controller's): an entry's data is one record batch; members are broker ids whose peer
//! addresses come from the node's peer set, so `Node` carries nothing.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// The data of a normal entry: one record batch, as the producer sent it after validation
/// (base offset and leader epoch are rewritten when it is appended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBatch(pub Bytes);

/// Why a record batch entry was kept out of the log (decided alike on every replica, from the
/// producer state of the entries before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotAppended {
    /// A retry of a batch already in the log: these are its offsets.
    Duplicate { base_offset: i64, last_offset: i64 },
    /// The producer's sequence does not follow its last batch.
    OutOfOrderSequence,
    /// The producer's epoch is older than its current one (a zombie).
    InvalidProducerEpoch,
    /// A transaction marker from a coordinator older than the one of the producer's last
    /// marker in the partition (a deposed coordinator).
    CoordinatorFenced,
    /// Not a record batch of the log but a request to move the log start offset here
    /// (DeleteRecords), carried out by every replica when it applies the entry.
    LogStart { offset: i64 },
}

/// What applying an entry answers to the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// A record batch: the offsets it got.
    Batch { base_offset: i64, last_offset: i64 },
    /// A blank or membership entry.
    RaftOnly,
    /// A metadata record of the controller log.
    Metadata(crate::controller::MetadataOutcome),
    /// A record batch that was not appended, and why.
    NotAppended(NotAppended),
    /// A log-start request: the partition's log start offset once it was applied.
    LogStart { low_watermark: i64 },
}

openraft::declare_raft_types!(
    /// Chronik's Raft types: node ids are broker ids (`u64`), entries are record batches.
    pub ChronikRaft:
        D = RecordBatch,
        R = Applied,
        NodeId = u64,
        Node = openraft::EmptyNode,
        Entry = openraft::Entry<ChronikRaft>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
        Responder = openraft::impls::OneshotResponder<ChronikRaft>,
);

pub type NodeId = u64;
pub type Entry = openraft::Entry<ChronikRaft>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Membership = openraft::Membership<NodeId, openraft::EmptyNode>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::EmptyNode>;
pub type RaftStorageError = openraft::StorageError<NodeId>;
pub type Raft = openraft::Raft<ChronikRaft>;
