//! The peer listener: accepts connections from other nodes and answers their requests,
//! concurrently and in any order, through a `PeerHandler`.

use super::wire::{self, PeerRequest, PeerResponse};
use crate::types::NodeId;
use chronik_types::limits::{
    PEER_IN_FLIGHT_BYTES_MAX, PEER_IN_FLIGHT_REQUESTS_MAX, PEER_QUEUE_REQUESTS_MAX,
};
use std::future::Future;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// Answers peer requests (the node's Raft groups).
pub trait PeerHandler: Send + Sync + 'static {
    fn handle(&self, from: NodeId, req: PeerRequest) -> impl Future<Output = PeerResponse> + Send;
}

/// Accepts peer connections on `listener` until the task is dropped.
pub async fn serve<H: PeerHandler>(listener: TcpListener, node_id: NodeId, handler: Arc<H>) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let handler = Arc::clone(&handler);
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, node_id, handler).await {
                        tracing::debug!(peer = %addr, error = %e, "peer connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection<H: PeerHandler>(
    stream: TcpStream,
    node_id: NodeId,
    handler: Arc<H>,
) -> Result<(), wire::WireError> {
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let (_, body) = wire::read_frame(&mut rd).await?;
    let from = match wire::decode::<PeerRequest>(&body)? {
        PeerRequest::Hello { node_id } => node_id,
        _ => return Ok(()), // not a peer: close
    };
    wire::write_frame(&mut wr, &wire::encode(0, &PeerResponse::Hello { node_id })?).await?;
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(PEER_QUEUE_REQUESTS_MAX);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wire::write_frame(&mut wr, &frame).await.is_err() {
                break;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(PEER_IN_FLIGHT_REQUESTS_MAX));
    let in_flight_bytes = Arc::new(Semaphore::new(PEER_IN_FLIGHT_BYTES_MAX));
    let result = loop {
        let (id, body) = match wire::read_frame(&mut rd).await {
            Ok(f) => f,
            Err(e) => break Err(e),
        };
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            break Ok(());
        };
        let bytes = body.len().clamp(1, PEER_IN_FLIGHT_BYTES_MAX);
        let Ok(bytes_permit) = Arc::clone(&in_flight_bytes)
            .acquire_many_owned(u32::try_from(bytes).unwrap_or(u32::MAX))
            .await
        else {
            break Ok(());
        };
        let handler = Arc::clone(&handler);
        let tx = tx.clone();
        tokio::spawn(async move {
            let resp = match wire::decode::<PeerRequest>(&body) {
                Ok(req) => handler.handle(from, req).await,
                Err(e) => PeerResponse::BadRequest(e.to_string()),
            };
            match wire::encode(id, &resp) {
                Ok(frame) => {
                    let _ = tx.send(frame).await;
                }
                Err(e) => tracing::warn!(error = %e, "peer response could not be encoded"),
            }
            drop(permit);
            drop(bytes_permit);
        });
    };
    drop(tx);
    writer.abort();
    result
}
