//! The Kafka accept loop, with a limit on concurrent connections.

use chronik_broker::Broker;
use chronik_types::limits::CONNECTIONS_MAX;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Accepts connections until `stop` fires; returns the tasks of open connections.
pub async fn accept_loop(
    listener: TcpListener,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) -> JoinSet<()> {
    let permits = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(%peer, limit = CONNECTIONS_MAX, "connection limit reached; refusing");
            drop(stream);
            continue;
        };
        metrics::counter!("chronik_connections_accepted_total").increment(1);
        let broker = Arc::clone(&broker);
        let stop = stop.clone();
        connections.spawn(async move {
            crate::connection::serve(stream, peer, broker, stop).await;
            drop(permit);
        });
    }
    connections
}
