//! The peer transport: every Raft group of a node talks to the other nodes over one
//! connection per peer (requests out) and the peer listener (requests in), pipelined, with
//! bounded queues and frames, reconnecting with capped exponential backoff.

pub mod client;
pub mod network;
pub mod server;
pub mod wire;

pub use client::PeerClient;
pub use network::{GroupNetwork, Peers};
pub use server::{serve, PeerHandler};
pub use wire::{GroupId, PeerRequest, PeerResponse};
