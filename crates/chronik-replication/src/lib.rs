//! Chronik's replication layer: a Raft group per partition (openraft), whose Raft log *is*
//! the partition's segment log. It owns the storage adapter (`LogStore`, `ReplicaLog`), the
//! partition state machine (the commit point becomes the high watermark) and the files around
//! them. It knows record batches, not Kafka requests.
//!
//! # Layout
//! - `controller`: the controller group: metadata records, the cluster image, placement.
//! - `config`: Raft timing and batching of a partition group.
//! - `types`: the openraft type configuration (`ChronikRaft`): entries are record batches.
//! - `flusher`: node-wide group commit of Raft log appends (fdatasync rounds).
//! - `groups`: the Raft groups a node hosts; answers peers' requests.
//! - `entry_index`: pure map from Raft index to a batch or a Raft-only entry.
//! - `proposer`: queues record batches to a partition leader in proposal order.
//! - `raft_entries`: the `raft-entries` file of Raft-only entries (blank, membership).
//! - `raft_state`: the `raft-state` file (vote, commit hint, purge point).
//! - `replica_log`: one replica's Raft log over its `PartitionLog`, with the durability order.
//! - `retention`: retention of a replicated log (snapshot, purge, then segments go).
//! - `node`: one node's part of the cluster: peer listener, controller, partition groups.
//! - `log_store`: openraft's `RaftLogStorage` over a `ReplicaLog`.
//! - `state_machine`: openraft's `RaftStateMachine` for a partition.
//! - `transport`: the peer protocol, client, listener and openraft network over TCP.
//! - `txn_markers`: transaction markers a coordinator asks a partition leader to write.

pub mod config;
pub mod controller;
pub mod entry_index;
pub mod flusher;
pub mod groups;
pub mod leadership;
pub mod log_store;
pub mod node;
pub mod proposer;
pub mod raft_entries;
pub mod raft_state;
pub mod replica_log;
pub mod retention;
pub mod state_machine;
pub mod transport;
pub mod txn_markers;
pub mod types;

pub use log_store::{LogStore, SharedReplica};
pub use replica_log::{ReplicaLog, SharedLog};
pub use state_machine::PartitionStateMachine;
pub use types::{Applied, ChronikRaft, RecordBatch};
