//! Chronik's consumer group coordinator (Kafka's classic group protocol) as a pure state
//! machine: every operation is `(state, request, now) -> (records to append, responses)`. It does
//! no I/O and never reads the clock; timers are deadlines stored in the state and fired by
//! `tick(now)`. Durable state (committed offsets, the group metadata written when a generation's
//! assignment is stored) changes only by `replay`ing records, which is also how the state is
//! rebuilt from `__consumer_offsets` at start-up.
//!
//! # Layout
//! - `types`: requests, responses, error codes and the `Output` of an operation.
//! - `group`: `Group`, `Member`, `GroupState`.
//! - `records`: the `__consumer_offsets` record format (Kafka's key/value schemas).
//! - `coordinator`: `GroupCoordinator`: the groups, replay, deadlines, `tick`.
//! - `rebalance`: shared rebalance steps (prepare, complete join, protocol selection).
//! - one file per operation: `join`, `sync`, `heartbeat`, `leave`, `offset_commit`,
//!   `offset_fetch`, `describe` (DescribeGroups, ListGroups), `delete` (DeleteGroups, OffsetDelete),
//!   `txn_offsets` (TxnOffsetCommit: offsets pending until their transaction's marker).

pub mod coordinator;
pub mod delete;
pub mod describe;
pub mod group;
pub mod heartbeat;
pub mod join;
pub mod leave;
pub mod offset_commit;
pub mod offset_fetch;
mod rebalance;
pub mod records;
pub mod sync;
pub mod txn_offsets;
pub mod types;

pub use coordinator::{CoordinatorConfig, GroupCoordinator};
pub use group::{Group, GroupState, Member};
pub use records::GroupRecord;
pub use types::*;
