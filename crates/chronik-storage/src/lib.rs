//! Chronik's storage layer: partition logs on disk and the small durable files around them.
//! It knows record batches (the stored format) but not Kafka requests or Raft.
//!
//! # Layout
//! - `batch`: record batch v2 header, validation (CRC-32C), base-offset and LogAppendTime rewrite.
//! - `batch_builder`: uncompressed batches built as a producer would (tests, simulator, markers).
//! - `index`: `OffsetIndex` and `TimeIndex` entries and files.
//! - `segment`: `LogSegment`, one `.log` file with its indexes.
//! - `recovery`: scan of a segment and the pure recovery planner.
//! - `log`: `PartitionLog`, the segments of one partition; append, read, retention.
//! - `producer_state`: idempotent producers' sequence numbers per partition.
//! - `txn_state`: open and aborted transactions per partition (last stable offset).
//! - `state_snapshot`: the `producer-state` file (producer and transaction state as of an
//!   offset, for replicated logs whose older segments are gone).
//! - `control`: control records (transaction markers).
//! - `check`: the offline check of a whole data directory.
//! - `cleaner`: log compaction (`cleanup.policy=compact`), crash-safe by `.cleaned`/`.swap`.
//! - `config`: topic configs (Kafka names, defaults, validation) and `LogConfig`.
//! - `checkpoint`: recovery-point and log-start-offset checkpoint files.
//! - `topic_store`: durable topic metadata (`topics.json`).
//! - `dynamic_config_store`: dynamic broker and group configs (`dynamic-configs.json`).
//! - `meta`: `meta.properties`, the data directory's identity.
//! - `fs`: the `FileSystem`/`LogFile` layer under segment files (real or fault-injecting).
//! - `faults`: `FaultyFileSystem`, injected disk faults for tests.
//! - `fsutil`: atomic file replacement and directory fsync.
//! - `error`: `StorageError` and `BatchError`.

pub mod batch;
pub mod batch_builder;
pub mod check;
pub mod checkpoint;
pub mod cleaner;
pub mod config;
pub mod control;
pub mod dynamic_config_store;
pub mod error;
pub mod faults;
pub mod fs;
pub mod fsutil;
pub mod index;
pub mod log;
pub mod meta;
pub mod producer_state;
pub mod recovery;
pub mod segment;
pub mod state_snapshot;
pub mod topic_store;
pub mod txn_state;

pub use error::{BatchError, StorageError};
pub use log::{AppendInfo, PartitionLog, RecoveryReport, SyncTarget};
