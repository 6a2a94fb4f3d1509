//! The controller group: a Raft group of every voter whose log (`__cluster_metadata`) holds the
//! cluster's metadata records, applied to the `ClusterImage` each node serves Metadata from.

pub mod assignment;
pub mod image;
pub mod records;
pub mod state_machine;

pub use image::{BrokerInfo, ClusterImage, TopicImage};
pub use records::{MetadataOutcome, MetadataRecord, RejectReason};
pub use state_machine::{ControllerStateMachine, SharedImage};

/// The controller's group: KRaft's metadata topic name, partition 0.
pub const CONTROLLER_TOPIC: &str = "__cluster_metadata";
