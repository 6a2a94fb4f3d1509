//! Chronik's shared vocabulary: newtypes for Kafka's identifiers and every named limit.
//!
//! # Layout
//! - `limits`: every maximum and default with its unit in its name.
//! - `ids`: `TopicPartition`, `NodeId`, offsets.
//!
//! This crate depends on nothing so every other crate can use it.

pub mod ids;
pub mod limits;

pub use ids::{NodeId, Offset, TopicPartition};
