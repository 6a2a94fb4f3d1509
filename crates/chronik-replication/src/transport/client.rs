//! `PeerClient`: this node's connection to one peer for the requests it sends. Connects on
//! first use and again after a failure, with capped exponential backoff; requests are
//! pipelined (many in flight, answered by correlation id) through a bounded queue.

use super::wire::{self, PeerRequest, PeerResponse, WireError};
use crate::types::NodeId;
use chronik_types::limits::{
    PEER_BACKOFF_MAX_MS, PEER_BACKOFF_MIN_MS, PEER_CONNECT_TIMEOUT_MS, PEER_QUEUE_BYTES_MAX,
    PEER_QUEUE_REQUESTS_MAX,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("peer {0} unreachable: {1}")]
    Unreachable(NodeId, String),
    #[error("peer {0} did not answer within {1:?}")]
    Timeout(NodeId, Duration),
    #[error("request to peer {0} is too large: {1}")]
    TooLarge(NodeId, WireError),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>>;
/// A frame on its way to the peer, holding its share of the queue's byte budget.
type Queued = (Vec<u8>, OwnedSemaphorePermit);

#[derive(Debug)]
struct Conn {
    tx: mpsc::Sender<Queued>,
    queued_bytes: Arc<Semaphore>,
    pending: Pending,
    alive: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Backoff {
    delay: Duration,
    retry_at: Option<Instant>,
}

#[derive(Debug)]
pub struct PeerClient {
    from: NodeId,
    target: NodeId,
    addr: String,
    conn: tokio::sync::Mutex<Option<Conn>>,
    backoff: Mutex<Backoff>,
    next_id: AtomicU64,
    /// When the peer last answered a request (any request, any group).
    last_answer: Arc<Mutex<Option<Instant>>>,
}

/// Removes a call's entry from the pending map when the call ends.
struct ForgetOnDrop {
    pending: Pending,
    id: u64,
}

impl Drop for ForgetOnDrop {
    fn drop(&mut self) {
        lock(&self.pending).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PeerClient {
    pub fn new(from: NodeId, target: NodeId, addr: String) -> Self {
        Self {
            from,
            target,
            addr,
            conn: tokio::sync::Mutex::new(None),
            backoff: Mutex::new(Backoff {
                delay: Duration::from_millis(PEER_BACKOFF_MIN_MS),
                retry_at: None,
            }),
            next_id: AtomicU64::new(1),
            last_answer: Arc::default(),
        }
    }

    /// Whether the peer answered a request within the last `within`: it is up and reachable
    /// (a leader sends heartbeats every 100 ms, so a live peer answers all the time).
    pub fn answered_within(&self, within: Duration) -> bool {
        lock(&self.last_answer).is_some_and(|at| at.elapsed() <= within)
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Sends `req` and waits up to `timeout` for its response.
    pub async fn call(
        &self,
        req: &PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::encode(id, req).map_err(|e| CallError::TooLarge(self.target, e))?;
        let (tx, queued_bytes, pending) = self.connection().await?;
        let bytes = frame.len().clamp(1, PEER_QUEUE_BYTES_MAX);
        let Ok(budget) =
            queued_bytes.try_acquire_many_owned(u32::try_from(bytes).unwrap_or(u32::MAX))
        else {
            return Err(CallError::Unreachable(
                self.target,
                "send queue full (bytes)".into(),
            ));
        };
        let (done, answer) = oneshot::channel();
        lock(&pending).insert(id, done);
        // Forgets the call when it ends in any way, also when the caller drops it (openraft
        // wraps every RPC in its own deadline), so unanswered calls do not pile up.
        let _forget = ForgetOnDrop { pending, id };
        if let Err(e) = tx.try_send((frame, budget)) {
            return Err(CallError::Unreachable(
                self.target,
                format!("send queue: {e}"),
            ));
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(body)) => wire::decode(&body)
                .map_err(|e| CallError::Unreachable(self.target, format!("bad response: {e}"))),
            Ok(Err(_)) => Err(CallError::Unreachable(
                self.target,
                "connection lost".into(),
            )),
            Err(_) => Err(CallError::Timeout(self.target, timeout)),
        }
    }

    /// The live connection, connecting if there is none and the backoff allows.
    async fn connection(
        &self,
    ) -> Result<(mpsc::Sender<Queued>, Arc<Semaphore>, Pending), CallError> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref().filter(|c| c.alive.load(Ordering::Acquire)) {
            return Ok((
                c.tx.clone(),
                Arc::clone(&c.queued_bytes),
                Arc::clone(&c.pending),
            ));
        }
        *conn = None;
        if let Some(at) = lock(&self.backoff).retry_at {
            if Instant::now() < at {
                return Err(CallError::Unreachable(self.target, "backing off".into()));
            }
        }
        match self.connect().await {
            Ok(c) => {
                *lock(&self.backoff) = Backoff {
                    delay: Duration::from_millis(PEER_BACKOFF_MIN_MS),
                    retry_at: None,
                };
                let out = (
                    c.tx.clone(),
                    Arc::clone(&c.queued_bytes),
                    Arc::clone(&c.pending),
                );
                *conn = Some(c);
                Ok(out)
            }
            Err(e) => {
                let mut b = lock(&self.backoff);
                b.retry_at = Some(Instant::now() + b.delay);
                b.delay = (b.delay * 2).min(Duration::from_millis(PEER_BACKOFF_MAX_MS));
                Err(CallError::Unreachable(self.target, e))
            }
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let connect = TcpStream::connect(&self.addr);
        let stream = tokio::time::timeout(Duration::from_millis(PEER_CONNECT_TIMEOUT_MS), connect)
            .await
            .map_err(|_| format!("connect to {} timed out", self.addr))?
            .map_err(|e| format!("connect to {}: {e}", self.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (mut rd, mut wr) = stream.into_split();
        let hello = wire::encode(0, &PeerRequest::Hello { node_id: self.from })
            .map_err(|e| e.to_string())?;
        wire::write_frame(&mut wr, &hello)
            .await
            .map_err(|e| e.to_string())?;
        let (_, body) = wire::read_frame(&mut rd).await.map_err(|e| e.to_string())?;
        match wire::decode::<PeerResponse>(&body).map_err(|e| e.to_string())? {
            PeerResponse::Hello { node_id } if node_id == self.target => {}
            PeerResponse::Hello { node_id } => {
                return Err(format!(
                    "{} is node {node_id}, not node {}",
                    self.addr, self.target
                ))
            }
            other => return Err(format!("unexpected answer to hello: {other:?}")),
        }
        let (tx, mut rx) = mpsc::channel::<Queued>(PEER_QUEUE_REQUESTS_MAX);
        let queued_bytes = Arc::new(Semaphore::new(PEER_QUEUE_BYTES_MAX));
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let writer_alive = Arc::clone(&alive);
        tokio::spawn(async move {
            while let Some((frame, budget)) = rx.recv().await {
                let written = wire::write_frame(&mut wr, &frame).await;
                drop(budget);
                if written.is_err() {
                    break;
                }
            }
            writer_alive.store(false, Ordering::Release);
        });
        let reader_pending = Arc::clone(&pending);
        let last_answer = Arc::clone(&self.last_answer);
        let reader_alive = Arc::clone(&alive);
        let target = self.target;
        tokio::spawn(async move {
            loop {
                match wire::read_frame(&mut rd).await {
                    Ok((id, body)) => {
                        *lock(&last_answer) = Some(Instant::now());
                        if let Some(done) = lock(&reader_pending).remove(&id) {
                            let _ = done.send(body);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(peer = target, error = %e, "peer connection closed");
                        break;
                    }
                }
            }
            reader_alive.store(false, Ordering::Release);
            lock(&reader_pending).clear(); // waiting calls see "connection lost"
        });
        Ok(Conn {
            tx,
            queued_bytes,
            pending,
            alive,
        })
    }
}
