//! Chronik's Kafka wire codec: framing, request decoding and response encoding on top of the
//! `kafka-protocol` crate, and the table of API versions Chronik supports. No I/O.
//!
//! # Layout
//! - `frame`: `split_frame`, which checks the size prefix against a maximum before allocating.
//! - `request`: request header + body decoding into a `DecodedRequest`, with the errors that
//!   decide whether a connection is answered or closed.
//! - `response`: response framing (header version per API, ApiVersions' v0 header rule).
//! - `versions`: the supported-version table that ApiVersions reports.

pub mod frame;
pub mod request;
pub mod response;
pub mod versions;

pub use frame::{split_frame, FrameError};
pub use kafka_protocol;
pub use request::{decode_request, DecodeError, DecodedRequest};
pub use response::{encode_response, EncodeError};
