//! Chronik's server shell: configuration, the Kafka listener and its connections (framing,
//! per-connection in-order responses), the HTTP endpoints (health, metrics), periodic upkeep
//! and graceful shutdown. Business logic lives in `chronik-broker`.
//!
//! # Layout
//! - `config`: flags, `CHRONIK_*` environment variables and TOML file, merged and validated.
//! - `data_dir`: creating, probing and locking the data directory.
//! - `connection`: one Kafka client connection: read frames, dispatch, write responses in order.
//! - `listener`: the accept loop with its connection limit.
//! - `http`: `/health/live`, `/health/ready`, `/metrics`.
//! - `run`: start-up order, background upkeep, shutdown.

pub mod config;
pub mod connection;
pub mod data_dir;
pub mod http;
pub mod listener;
pub mod run;
