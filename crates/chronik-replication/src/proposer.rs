//! `Proposer`: hands record batches to a partition's Raft leader in the order they were
//! proposed. Proposals are queued synchronously (a request handler runs in arrival order), and
//! one task per partition passes them to openraft, so batches of one producer connection keep
//! their order while many are in flight.

use crate::types::{Applied, NodeId, Raft, RecordBatch};
use openraft::error::ClientWriteError;
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    #[error("the partition's Raft group stopped")]
    Stopped,
    #[error("{0}")]
    Failed(String),
}

type Reply = oneshot::Sender<Result<Applied, ProposeError>>;

#[derive(Debug, Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<(RecordBatch, Reply)>,
}

impl Proposer {
    /// Starts the proposing task of `raft` (it ends when every `Proposer` clone is dropped).
    pub fn start(raft: Raft) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(RecordBatch, Reply)>();
        tokio::spawn(async move {
            while let Some((batch, reply)) = rx.recv().await {
                match raft.client_write_ff(batch).await {
                    Ok(pending) => {
                        tokio::spawn(async move {
                            let result = match pending.await {
                                Ok(Ok(resp)) => Ok(resp.data),
                                Ok(Err(ClientWriteError::ForwardToLeader(f))) => {
                                    Err(ProposeError::NotLeader(f.leader_id))
                                }
                                Ok(Err(e)) => Err(ProposeError::Failed(e.to_string())),
                                Err(_) => Err(ProposeError::Stopped),
                            };
                            let _ = reply.send(result);
                        });
                    }
                    Err(_) => {
                        let _ = reply.send(Err(ProposeError::Stopped));
                    }
                }
            }
        });
        Self { tx }
    }

    /// Queues `batch` now; the future resolves once it is committed and applied. An entry must
    /// be exactly one record batch (the log stores one per entry and would refuse it fatally):
    /// anything else is refused here.
    pub fn propose(
        &self,
        batch: RecordBatch,
    ) -> impl Future<Output = Result<Applied, ProposeError>> + Send + 'static {
        let whole = chronik_storage::batch::peek_size(&batch.0).map(|(_, size)| size);
        let one_batch = whole == Some(batch.0.len());
        let (reply, answer) = oneshot::channel();
        let queued = one_batch && self.tx.send((batch, reply)).is_ok();
        async move {
            if !one_batch {
                return Err(ProposeError::Failed(
                    "a proposal must be exactly one record batch".into(),
                ));
            }
            if !queued {
                return Err(ProposeError::Stopped);
            }
            answer.await.unwrap_or(Err(ProposeError::Stopped))
        }
    }
}
