//! Broker errors and the one place where internal errors become Kafka error codes.

use chronik_storage::producer_state::ProducerError;
use chronik_storage::{BatchError, StorageError};
use kafka_protocol::error::ResponseError;

/// Errors of broker operations, each with its Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("unknown topic id")]
    UnknownTopicId,
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error(transparent)]
    InvalidConfig(#[from] chronik_storage::config::InvalidConfig),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid required acks {0}")]
    InvalidRequiredAcks(i16),
    #[error("the broker is shutting down")]
    ShuttingDown,
    #[error("the cluster controller is not available: {0}")]
    ControllerUnavailable(String),
    #[error("this broker is not the leader of the partition")]
    NotLeaderOrFollower,
    #[error("the write could not be made durable: {0}")]
    FlushFailed(String),
    #[error(transparent)]
    Transaction(#[from] chronik_txn::TxnError),
    /// A coordinator could not store its state (the client finds the coordinator again).
    #[error("the coordinator could not store its state: {0}")]
    CoordinatorNotAvailable(String),
}

impl BrokerError {
    /// Kafka's error code for this error.
    pub fn code(&self) -> i16 {
        let e = match self {
            Self::Storage(s) => return storage_code(s),
            Self::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            Self::UnknownTopicId => ResponseError::UnknownTopicId,
            Self::InvalidTopic(_) => ResponseError::InvalidTopicException,
            Self::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            Self::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            Self::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            Self::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            Self::InvalidConfig(_) => ResponseError::InvalidConfig,
            Self::InvalidRequest(_) => ResponseError::InvalidRequest,
            Self::InvalidRequiredAcks(_) => ResponseError::InvalidRequiredAcks,
            Self::ShuttingDown | Self::NotLeaderOrFollower => ResponseError::NotLeaderOrFollower,
            Self::ControllerUnavailable(_) => ResponseError::RequestTimedOut,
            Self::FlushFailed(_) => ResponseError::KafkaStorageError,
            Self::Transaction(t) => txn_code(*t),
            Self::CoordinatorNotAvailable(_) => ResponseError::CoordinatorNotAvailable,
        };
        e.code()
    }

    /// The message for responses that carry one (`error_message` fields).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// PRODUCER_FENCED (90) as clients of older request versions know it: INVALID_PRODUCER_EPOCH
/// (47), as Kafka answers them (`modern`: the request version knows PRODUCER_FENCED).
pub fn fenced_for_version(code: i16, modern: bool) -> i16 {
    if !modern && code == ResponseError::ProducerFenced.code() {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        code
    }
}

fn txn_code(e: chronik_txn::TxnError) -> ResponseError {
    use chronik_txn::TxnError;
    match e {
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::ProducerFenced => ResponseError::ProducerFenced,
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
        TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
        TxnError::ProducerIdUnavailable => ResponseError::CoordinatorNotAvailable,
    }
}

fn storage_code(e: &StorageError) -> i16 {
    let e = match e {
        StorageError::Io { .. }
        | StorageError::LogOffline(_)
        | StorageError::Corrupt { .. }
        | StorageError::DiskFull(_) => ResponseError::KafkaStorageError,
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        StorageError::Producer(p) => match p {
            ProducerError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            ProducerError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            ProducerError::DuplicateSequence(_) => ResponseError::DuplicateSequenceNumber,
            ProducerError::CoordinatorFenced { .. } => ResponseError::TransactionCoordinatorFenced,
        },
        StorageError::Batch(b) => match b {
            BatchError::CrcMismatch { .. }
            | BatchError::Truncated
            | BatchError::LengthMismatch { .. } => ResponseError::CorruptMessage,
            BatchError::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat,
            BatchError::InvalidRecordCount
            | BatchError::NonZeroBaseOffset(_)
            | BatchError::KeylessRecordForCompactedTopic(_)
            | BatchError::ControlBatchFromClient => ResponseError::InvalidRecord,
            BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
        },
    };
    e.code()
}

/// Shorthand for the codes handlers use directly.
pub fn code(e: ResponseError) -> i16 {
    e.code()
}

pub const NONE: i16 = 0;
