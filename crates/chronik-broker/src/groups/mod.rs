//! The group coordinator service: the pure `chronik_group::GroupCoordinator` behind an async
//! lock, its records stored in the internal topic `__consumer_offsets`, waiting JoinGroup and
//! SyncGroup requests, and the timer task that fires its deadlines.

pub mod offsets_topic;
mod service;

pub use offsets_topic::OFFSETS_TOPIC_PARTITIONS;
pub use service::GroupService;
