//! The transaction coordinator service: the pure `chronik_txn::TransactionCoordinator` behind
//! an async lock, its records stored in the internal topic `__transaction_state`, the markers
//! that end a transaction in each of its partitions, the timer that aborts transactions past
//! their timeout, and (`guards`) the verification of transactional batches in a cluster.

pub mod guards;
pub mod markers;
mod service;
pub mod state_topic;

pub use service::{TxnService, Verification};
pub use state_topic::TXN_STATE_PARTITIONS;
