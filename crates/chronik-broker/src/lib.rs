//! Chronik's broker: one handler per Kafka API over the partition logs, and the state they
//! share. Opens no sockets; the server crate feeds it decoded requests.
//!
//! # Layout
//! - `broker`: `Broker`, the shared state; start-up recovery, checkpoints, retention, shutdown.
//! - `config`: `BrokerConfig`, broker-level settings with Kafka's names.
//! - `dynamic_configs`: dynamic broker configs (per broker, cluster-wide) and group configs.
//! - `topics`: `Topic`, topic-name / partition / replication-factor rules.
//! - `partition`: `Partition`, a log behind its lock (and its Raft group in a cluster).
//! - `cluster`: cluster mode: topics from the controller image, admin through the controller.
//! - `group_commit`: one fdatasync round shared by all concurrent appends on the node.
//! - `groups`: the group coordinator service over `__consumer_offsets`.
//! - `txn`: the transaction coordinator service over `__transaction_state`, and markers.
//! - `internal_topic`: storing coordinator records and markers, reading internal topics back.
//! - `producer_ids`: durable producer id blocks for idempotent producers.
//! - `fetch_session`: incremental fetch sessions (KIP-227), pure.
//! - `handlers`: `dispatch` and one file per Kafka API.
//! - `isr`: in-sync replicas of a partition this node leads (replica.lag.time.max.ms).
//! - `error`: `BrokerError` and the mapping of every internal error to a Kafka error code.

pub mod broker;
pub mod cluster;
pub mod config;
pub mod dynamic_configs;
pub mod error;
pub mod fetch_session;
pub mod group_commit;
pub mod groups;
pub mod handlers;
pub mod internal_topic;
pub mod isr;
pub mod partition;
pub mod preferred_leader;
pub mod producer_ids;
pub mod topics;
pub mod txn;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use handlers::dispatch;
