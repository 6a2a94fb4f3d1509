//! Chronik's deterministic simulator: the real replication and storage code (openraft over
//! `ReplicaLog`/`PartitionLog` on a fault-injecting file system) of one partition's Raft group
//! of 3 or 5 replicas, in one process on virtual time, with a simulated network, seeded faults
//! and invariant checkers. One seed is one run, and the same seed gives the same run (the
//! trace hash).
//!
//! # Layout
//! - `network`: the simulated network (loss, delay/reordering, duplication, partitions).
//! - `replica`: one replica on its own directory, crash (lose unsynced bytes) and restart.
//! - `history`: what the run did and saw; the trace.
//! - `checkers`: one invariant per file (acked not lost, no duplicates, identical logs, ...).
//! - `run`: the driver of one seed (faults, workload, healing, checks).

pub mod checkers;
pub mod history;
pub mod network;
pub mod replica;
pub mod run;

pub use run::{replay_command, run, run_seeds, RunConfig, RunResult};
