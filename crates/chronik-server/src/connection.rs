//! One Kafka client connection. The reader splits frames, decodes and dispatches requests in
//! arrival order; the writer sends responses in that same order, as Kafka requires, while up to
//! `IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX` requests are being worked on.

use bytes::{Bytes, BytesMut};
use chronik_broker::handlers::{unsupported_version_response, ResponseFuture};
use chronik_broker::Broker;
use chronik_protocol::kafka_protocol::messages::ResponseKind;
use chronik_protocol::versions::api_name;
use chronik_protocol::{decode_request, encode_response, split_frame, DecodeError};
use chronik_types::limits::{FRAME_BYTES_MAX, IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

const READ_BUFFER_BYTES: usize = 64 * 1024;

/// A response slot, in request order.
enum Pending {
    /// Encoded already (e.g. ApiVersions' unsupported-version answer).
    Ready(Bytes),
    /// Still being worked on.
    Future {
        correlation_id: i32,
        version: i16,
        response: ResponseFuture,
    },
}

pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Pending>(IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX);
    let write_task = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            let bytes = match p {
                Pending::Ready(b) => b,
                Pending::Future {
                    correlation_id,
                    version,
                    response,
                } => match response.await {
                    None => continue,
                    Some(r) => match encode_response(correlation_id, version, &r) {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::error!(%peer, error = %e, "could not encode a response; closing");
                            break;
                        }
                    },
                },
            };
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    // Kafka reports a member's host as "/<ip>".
    let client_host = format!("/{}", peer.ip());
    let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    'read: loop {
        loop {
            let frame = match split_frame(&mut buf, FRAME_BYTES_MAX) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break 'read;
                }
            };
            let pending = match decode_request(frame) {
                Ok(req) => {
                    let correlation_id = req.header.correlation_id;
                    let version = req.header.request_api_version;
                    let api = api_name(req.api_key);
                    let started = std::time::Instant::now();
                    let inner = chronik_broker::dispatch(&broker, req, &client_host);
                    let response: ResponseFuture = Box::pin(async move {
                        let r = inner.await;
                        metrics::histogram!("chronik_request_duration_seconds", "api" => api)
                            .record(started.elapsed().as_secs_f64());
                        r
                    });
                    Pending::Future {
                        correlation_id,
                        version,
                        response,
                    }
                }
                Err(DecodeError::UnsupportedApiVersions {
                    correlation_id,
                    version,
                }) => {
                    tracing::debug!(%peer, version, "ApiVersions of an unknown version; answering in v0");
                    let body = ResponseKind::ApiVersions(unsupported_version_response());
                    match encode_response(correlation_id, 0, &body) {
                        Ok(b) => Pending::Ready(b),
                        Err(_) => break 'read,
                    }
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break 'read;
                }
            };
            if tx.send(pending).await.is_err() {
                break 'read;
            }
        }
        tokio::select! {
            n = reader.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = stop.changed() => break,
        }
    }
    drop(tx);
    let _ = write_task.await;
}
