//! A minimal HTTP/1.1 responder for three fixed GET endpoints: `/health/live`,
//! `/health/ready` and `/metrics` (Prometheus text format).

use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head accepted.
const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;

/// What the endpoints report.
#[derive(Clone)]
pub struct HttpState {
    pub metrics: PrometheusHandle,
    /// Set once recovery is done and the Kafka listener serves.
    pub ready: Arc<AtomicBool>,
    /// Extra readiness condition (every log online).
    pub healthy: Arc<dyn Fn() -> bool + Send + Sync>,
}

pub async fn serve(listener: TcpListener, state: HttpState) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _ = answer(stream, &state).await;
        });
    }
}

async fn answer(mut stream: TcpStream, state: &HttpState) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || head.len() > REQUEST_HEAD_BYTES_MAX {
            return Ok(());
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/health/live") => ("200 OK", "text/plain", "live\n".to_string()),
        ("GET", "/health/ready") => {
            if state.ready.load(Ordering::SeqCst) && (state.healthy)() {
                ("200 OK", "text/plain", "ready\n".to_string())
            } else {
                (
                    "503 Service Unavailable",
                    "text/plain",
                    "not ready\n".to_string(),
                )
            }
        }
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4",
            state.metrics.render(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
