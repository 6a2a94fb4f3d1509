//! The peer protocol: which Raft group a message is for, the requests and responses, and the
//! frame they travel in.
//!
//! ```text
//! frame := length: u32 BE (bytes after this field) | correlation_id: u64 BE | body (postcard)
//! ```
//! A connection starts with a `Hello` naming the sender; every request gets exactly one
//! response with the same correlation id, in any order.

use crate::types::{ChronikRaft, NodeId};
use chronik_types::limits::PEER_FRAME_BYTES_MAX;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A Raft group: a partition, or the controller (`__cluster_metadata`, partition 0, as KRaft
/// names its metadata log).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId {
    pub topic: String,
    pub partition: i32,
}

impl GroupId {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    Hello {
        node_id: NodeId,
    },
    AppendEntries(GroupId, AppendEntriesRequest<ChronikRaft>),
    Vote(GroupId, VoteRequest<NodeId>),
    InstallSnapshot(GroupId, InstallSnapshotRequest<ChronikRaft>),
    /// Propose a metadata record to the controller (sent to its leader).
    ControllerWrite(crate::controller::MetadataRecord),
    /// Campaign in this group now (sent by a leader handing its leadership over to the
    /// receiver, once the other followers' leader leases have run out): Raft's TimeoutNow.
    ElectNow(GroupId),
    /// The partitions the sender leads (see `leadership`).
    Leadership(Vec<crate::leadership::Announcement>),
    /// Write these transaction markers (sent to the partitions' leader; see `txn_markers`).
    WriteTxnMarkers(crate::txn_markers::TxnMarkers),
    /// Is this transactional batch part of an open transaction (sent to its coordinator)?
    VerifyTxn(crate::txn_markers::VerifyTxn),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    Hello {
        node_id: NodeId,
    },
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The controller log index the record got, and its outcome.
    ControllerWrite(Result<(u64, crate::controller::MetadataOutcome), ControllerWriteError>),
    /// The receiver has no replica of that group (yet).
    UnknownGroup,
    /// The receiver could not decode the request.
    BadRequest(String),
    /// The receiver started an election (answer to `ElectNow`).
    Electing,
    /// The receiver noted the announcements (answer to `Leadership`).
    Noted,
    /// Per partition, whether its marker is stored (answer to `WriteTxnMarkers`).
    TxnMarkers(crate::txn_markers::MarkerResults),
    /// The answer to `VerifyTxn`.
    TxnVerdict(crate::txn_markers::TxnVerdict),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ControllerWriteError {
    #[error("not the controller leader (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    #[error("controller write failed: {0}")]
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("peer frame of {0} bytes exceeds the limit of {PEER_FRAME_BYTES_MAX}")]
    TooLarge(usize),
    #[error("peer frame shorter than its header")]
    Short,
    #[error("encoding: {0}")]
    Codec(#[from] postcard::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

const CORRELATION_BYTES: usize = 8;

/// Encodes one frame (length, correlation id, body).
pub fn encode<T: Serialize>(correlation_id: u64, body: &T) -> Result<Vec<u8>, WireError> {
    let mut out = vec![0u8; 4 + CORRELATION_BYTES];
    let mut out = postcard::to_extend(body, std::mem::take(&mut out))?;
    let len = out.len() - 4;
    if len > PEER_FRAME_BYTES_MAX {
        return Err(WireError::TooLarge(len));
    }
    out[..4].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    out[4..4 + CORRELATION_BYTES].copy_from_slice(&correlation_id.to_be_bytes());
    Ok(out)
}

/// Reads one frame: its correlation id and body. The size is checked before allocating.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<(u64, Vec<u8>), WireError> {
    let len = r.read_u32().await? as usize;
    if len > PEER_FRAME_BYTES_MAX {
        return Err(WireError::TooLarge(len));
    }
    if len < CORRELATION_BYTES {
        return Err(WireError::Short);
    }
    let correlation_id = r.read_u64().await?;
    let mut body = vec![0u8; len - CORRELATION_BYTES];
    r.read_exact(&mut body).await?;
    Ok((correlation_id, body))
}

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> Result<(), WireError> {
    w.write_all(frame).await?;
    Ok(())
}

pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WireError> {
    Ok(postcard::from_bytes(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_lengths_are_refused() -> Result<(), WireError> {
        let req = PeerRequest::Vote(
            GroupId::new("orders", 3),
            VoteRequest::new(openraft::Vote::new(4, 2), None),
        );
        let frame = encode(77, &req)?;
        let (corr, body) = read_frame(&mut frame.as_slice()).await?;
        assert_eq!(corr, 77);
        match decode::<PeerRequest>(&body)? {
            PeerRequest::Vote(g, v) => {
                assert_eq!(g, GroupId::new("orders", 3));
                assert_eq!(v.vote, openraft::Vote::new(4, 2));
            }
            other => panic!("decoded {other:?}"),
        }
        let mut huge = Vec::new();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_frame(&mut huge.as_slice()).await,
            Err(WireError::TooLarge(_))
        ));
        Ok(())
    }
}
