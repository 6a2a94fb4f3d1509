//! Chronik's transaction coordinator (Kafka's `TransactionCoordinator` with its
//! `TransactionStateManager`) as a pure state machine: each operation takes the state, the
//! request and `now` and returns records to append to `__transaction_state` (and, when a
//! transaction ends, the markers to write to its partitions). The state changes only by
//! `replay`ing records, which is also how it is rebuilt after a restart or a failover. No I/O,
//! no clock.
//!
//! # Layout
//! - `state`: `TxnState` and `TransactionMetadata`, one transactional id's state.
//! - `records`: the `__transaction_state` record format (key and value bytes).
//! - `error`: `TxnError`, what an operation refuses (mapped to Kafka codes by the broker).
//! - `coordinator`: `TransactionCoordinator`: InitProducerId, AddPartitionsToTxn,
//!   AddOffsetsToTxn, EndTxn, marker completion, timeouts and expiry (`tick`).

pub mod coordinator;
pub mod error;
pub mod records;
pub mod state;

pub use coordinator::{Completion, CoordinatorConfig, InitStep, TransactionCoordinator};
pub use error::TxnError;
pub use records::TxnRecord;
pub use state::{TransactionMetadata, TxnState};
