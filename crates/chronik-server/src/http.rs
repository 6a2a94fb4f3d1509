//! A minimal HTTP/1.1 responder for fixed GET endpoints: `/health/live`, `/health/ready`,
//! `/metrics` (Prometheus text format), `/cluster` (JSON, cluster nodes only); and, only with the test-only
//! `--test-fault-injection`, `GET|PUT /test/faults` to drive the fault-injecting disk layer.

use chronik_storage::faults::{FaultPlan, FaultyFileSystem};
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
    /// TEST ONLY: the fault-injecting file layer, when `--test-fault-injection` is on.
    pub faults: Option<FaultyFileSystem>,
    /// `GET /cluster`: the cluster's state as JSON (`None` on a single node).
    pub cluster: Arc<dyn Fn() -> Option<String> + Send + Sync>,
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

/// Parses `?fail_syncs=true&disk_full=false&torn_write_bytes=0&sync_delay_ms=0` (missing keys
/// are off/zero).
fn parse_plan(query: &str) -> Result<FaultPlan, String> {
    let mut plan = FaultPlan::default();
    for pair in query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("bad parameter {pair}"))?;
        let flag = || match v {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(format!("bad value for {k}: {v}")),
        };
        let number = || {
            v.parse::<u64>()
                .map_err(|_| format!("bad value for {k}: {v}"))
        };
        match k {
            "fail_syncs" => plan.fail_syncs = flag()?,
            "disk_full" => plan.disk_full = flag()?,
            "torn_write_bytes" => {
                plan.torn_write_bytes = usize::try_from(number()?).map_err(|e| e.to_string())?
            }
            "sync_delay_ms" => plan.sync_delay_ms = number()?,
            other => return Err(format!("unknown fault {other}")),
        }
    }
    Ok(plan)
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
        ("GET", "/cluster") => match (state.cluster)() {
            Some(json) => ("200 OK", "application/json", json),
            None => (
                "404 Not Found",
                "text/plain",
                "not a cluster node\n".to_string(),
            ),
        },
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4",
            state.metrics.render(),
        ),
        ("PUT", p) if p.starts_with("/test/faults") && state.faults.is_some() => {
            match state.faults.as_ref() {
                Some(faults) => match parse_plan(p.strip_prefix("/test/faults").unwrap_or("")) {
                    Ok(plan) => {
                        tracing::warn!(?plan, "TEST-ONLY fault plan set");
                        faults.set_plan(plan.clone());
                        ("200 OK", "text/plain", format!("{plan:?}\n"))
                    }
                    Err(e) => ("400 Bad Request", "text/plain", format!("{e}\n")),
                },
                None => ("404 Not Found", "text/plain", "not found\n".to_string()),
            }
        }
        ("GET", "/test/faults") if state.faults.is_some() => (
            "200 OK",
            "text/plain",
            format!("{:?}\n", state.faults.as_ref().map(FaultyFileSystem::plan)),
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
