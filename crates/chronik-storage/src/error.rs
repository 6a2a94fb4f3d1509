//! Errors of the storage layer.

use chronik_types::Offset;
use std::path::PathBuf;

/// Why a record batch was rejected.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("record batch truncated")]
    Truncated,
    #[error("record batch length field says {declared} bytes, {actual} present")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record batch has an invalid record count or last offset delta")]
    InvalidRecordCount,
    #[error("record batch base offset must be 0 from a producer, got {0}")]
    NonZeroBaseOffset(Offset),
    /// The indexes (within the batch) of the records without a key.
    #[error("Compacted topic cannot accept message without key")]
    KeylessRecordForCompactedTopic(Vec<i32>),
    #[error("clients are not allowed to write control records")]
    ControlBatchFromClient,
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
}

/// Errors of log operations.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: Offset,
        log_start_offset: Offset,
        log_end_offset: Offset,
    },
    #[error("disk full writing {0}; nothing of the write was kept")]
    DiskFull(PathBuf),
    #[error("log {0} is offline after an earlier I/O error")]
    LogOffline(PathBuf),
    #[error(transparent)]
    Producer(#[from] crate::producer_state::ProducerError),
    #[error("corrupt file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl StorageError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Attaches a path to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StorageError> {
        self.map_err(|e| StorageError::io(path, e))
    }
}
