//! Start-up order, background upkeep and graceful shutdown.
//!
//! Start-up: lock the data dir, start HTTP (live, not ready), open the broker (recovery), bind
//! Kafka, then report ready. On SIGTERM/SIGINT: stop accepting, let connections finish their
//! in-flight requests, flush every log, write checkpoints, exit 0.

use crate::config::Config;
use crate::http::{self, HttpState};
use anyhow::{Context, Result};
use chronik_broker::{Broker, BrokerConfig};
use chronik_storage::faults::FaultyFileSystem;
use chronik_types::limits::{COMPACTION_CHECK_INTERVAL_MS, RECOVERY_POINT_CHECKPOINT_INTERVAL_MS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How often the Raft gauges of `/metrics` are refreshed (cluster mode).
const RAFT_METRICS_INTERVAL_MS: u64 = 1_000;

/// Longest a shutdown waits for open connections to finish their in-flight requests.
const SHUTDOWN_DRAIN_MS: u64 = 10_000;

pub fn run(config: Config) -> Result<()> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHRONIK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(config: Config) -> Result<()> {
    let _lock = crate::data_dir::prepare(&config.data_dir)?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let http_listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on http-addr {}", config.http_addr))?;
    let ready = Arc::new(AtomicBool::new(false));
    let faults = config.test_fault_injection.then(FaultyFileSystem::new);
    if faults.is_some() {
        tracing::warn!("TEST-ONLY fault injection is enabled: PUT /test/faults controls the disk");
    }
    let broker_slot: Arc<std::sync::OnceLock<Arc<Broker>>> = Arc::new(std::sync::OnceLock::new());
    let healthy = {
        let slot = Arc::clone(&broker_slot);
        Arc::new(move || slot.get().is_some_and(|b| b.all_logs_online()))
            as Arc<dyn Fn() -> bool + Send + Sync>
    };
    let cluster = {
        let slot = Arc::clone(&broker_slot);
        Arc::new(move || {
            slot.get()
                .and_then(|b| b.cluster_status())
                .map(|v| v.to_string())
        }) as Arc<dyn Fn() -> Option<String> + Send + Sync>
    };
    tokio::spawn(http::serve(
        http_listener,
        HttpState {
            metrics,
            ready: Arc::clone(&ready),
            healthy,
            faults: faults.clone(),
            cluster,
        },
    ));

    let mut broker_config = BrokerConfig::new(
        config.node_id,
        config.data_dir.clone(),
        config.advertised_host.clone(),
        i32::from(config.advertised_port),
    );
    broker_config.num_partitions = config.num_partitions;
    broker_config.auto_create_topics_enable = config.auto_create_topics_enable;
    broker_config.group_initial_rebalance_delay_ms = config.group_initial_rebalance_delay_ms;
    broker_config.auto_leader_rebalance_enable = config.auto_leader_rebalance_enable;
    broker_config.log_retention_check_interval_ms = config.log_retention_check_interval_ms;
    broker_config.leader_imbalance_check_interval_ms = config
        .leader_imbalance_check_interval_seconds
        .saturating_mul(1000);
    if let Some(faults) = &faults {
        broker_config.fs = Arc::new(faults.clone());
    }
    let broker = if config.peers.is_empty() {
        Broker::open(broker_config).context("cannot open the data dir")?
    } else {
        let node = start_cluster_node(&config, &broker_config).await?;
        Broker::open_cluster(broker_config, node).context("cannot open the data dir")?
    };
    let _ = broker_slot.set(Arc::clone(&broker));
    let kafka_listener = TcpListener::bind(config.kafka_addr)
        .await
        .with_context(|| format!("cannot listen on kafka-addr {}", config.kafka_addr))?;
    match &broker.cluster {
        None => {
            tracing::info!(kafka = %config.kafka_addr, http = %config.http_addr, data_dir = %config.data_dir.display(),
                node_id = config.node_id, "chronik-server ready");
            ready.store(true, Ordering::SeqCst);
        }
        Some(_) => {
            // Ready once this broker is registered with the controller and serves every topic
            // committed before it started (`Broker::metadata_ready`).
            let mut metadata = broker.metadata_ready_changes();
            let ready = Arc::clone(&ready);
            let node_id = config.node_id;
            tokio::spawn(async move {
                if metadata.wait_for(|r| *r).await.is_ok() {
                    tracing::info!(node_id, "chronik-server ready (cluster member)");
                    ready.store(true, Ordering::SeqCst);
                }
            });
        }
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let upkeep = tokio::spawn(upkeep(Arc::clone(&broker), stop_rx.clone()));
    tokio::spawn(Arc::clone(&broker.groups).run_timers(Arc::clone(&broker)));
    tokio::spawn(Arc::clone(&broker.txns).run_timers(Arc::clone(&broker)));
    let accept = tokio::spawn(crate::listener::accept_loop(
        kafka_listener,
        Arc::clone(&broker),
        stop_rx,
    ));
    // A cluster node whose storage failed (a Raft group stopped on a fatal error) stops, as
    // Kafka stops a broker whose log directories have all failed: the other nodes take over
    // its partitions, and clients stop sending it requests it can no longer serve.
    let storage_failure = tokio::select! {
        r = wait_for_signal() => {
            r?;
            None
        }
        e = watch_for_failed_storage(Arc::clone(&broker)) => Some(e),
    };
    match &storage_failure {
        Some(e) => tracing::error!(error = %e, "the data directory failed; shutting down"),
        None => tracing::info!("shutting down"),
    }
    ready.store(false, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    broker.begin_shutdown();
    let mut connections = accept.await.context("accept loop failed")?;
    let drained = tokio::time::timeout(Duration::from_millis(SHUTDOWN_DRAIN_MS), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open after the drain period; closing them");
    }
    let _ = upkeep.await;
    if let Some(node) = &broker.cluster {
        if let Err(e) = node.shutdown().await {
            tracing::warn!(error = %e, "writing Raft checkpoints at shutdown failed");
        }
    }
    let b = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || b.flush_all())
        .await
        .context("flush task failed")?
        .context("final flush failed")?;
    if let Some(e) = storage_failure {
        anyhow::bail!("stopped because the data directory failed: {e}");
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Returns (cluster mode only; never on a single node, which turns unready instead) once one of
/// this node's Raft groups stopped on a storage failure.
async fn watch_for_failed_storage(broker: Arc<Broker>) -> String {
    if broker.cluster.is_none() {
        return std::future::pending().await;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(RAFT_METRICS_INTERVAL_MS));
    loop {
        tick.tick().await;
        if let Some(e) = broker.failed_group() {
            return e;
        }
    }
}

/// Periodic checkpoints and retention until `stop`.
async fn upkeep(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut checkpoint =
        tokio::time::interval(Duration::from_millis(RECOVERY_POINT_CHECKPOINT_INTERVAL_MS));
    let mut retention = tokio::time::interval(Duration::from_millis(
        broker.config.log_retention_check_interval_ms,
    ));
    let mut compaction = tokio::time::interval(Duration::from_millis(COMPACTION_CHECK_INTERVAL_MS));
    let mut raft_metrics = tokio::time::interval(Duration::from_millis(RAFT_METRICS_INTERVAL_MS));
    let mut imbalance_check = tokio::time::interval(Duration::from_millis(
        broker.config.leader_imbalance_check_interval_ms.max(1),
    ));
    imbalance_check.tick().await; // the first check one interval after start, as in Kafka
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = raft_metrics.tick() => {
                broker.record_raft_metrics();
                broker.announce_leadership();
                broker.check_preferred_leaders(false);
            }
            _ = imbalance_check.tick() => {
                broker.check_preferred_leaders(broker.config.auto_leader_rebalance_enable);
            }
            _ = checkpoint.tick() => {
                let b = Arc::clone(&broker);
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || b.write_checkpoints()).await {
                    tracing::warn!(error = %e, "writing checkpoints failed");
                }
            }
            _ = compaction.tick() => {
                let b = Arc::clone(&broker);
                if let Ok(n) = tokio::task::spawn_blocking(move || b.compact_logs()).await {
                    if n > 0 {
                        tracing::info!(segments = n, "compacted segments");
                    }
                }
            }
            _ = retention.tick() => {
                let b = Arc::clone(&broker);
                if let Ok(n) = tokio::task::spawn_blocking(move || b.apply_retention()).await {
                    if n > 0 {
                        tracing::info!(segments = n, "retention deleted segments");
                    }
                }
                if let Some(node) = &broker.cluster {
                    // Replicated logs: each replica snapshots and purges, then deletes segments.
                    node.apply_retention(chronik_broker::broker::now_ms()).await;
                }
            }
        }
    }
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    Ok(())
}

/// Binds the peer listener and starts this node's replication (controller and partition
/// groups). Never waits for peers: they are connected to in the background.
async fn start_cluster_node(
    config: &Config,
    broker_config: &BrokerConfig,
) -> Result<Arc<chronik_replication::node::ReplicationNode>> {
    let raft_addr = config.raft_addr.unwrap_or(crate::config::DEFAULT_RAFT_ADDR);
    let listener = TcpListener::bind(raft_addr)
        .await
        .with_context(|| format!("cannot listen on raft-addr {raft_addr}"))?;
    let me = u64::try_from(config.node_id).context("node-id must not be negative")?;
    let mut voters = std::collections::BTreeMap::new();
    voters.insert(me, raft_addr.to_string());
    for (id, addr) in &config.peers {
        let id = u64::try_from(*id).context("peer ids must not be negative")?;
        voters.insert(id, addr.clone());
    }
    crate::data_dir::check_membership(&config.data_dir, me, &voters)?;
    let node = chronik_replication::node::ReplicationNode::start(
        chronik_replication::node::NodeConfig {
            node_id: me,
            data_dir: config.data_dir.clone(),
            voters,
            kafka_host: config.advertised_host.clone(),
            kafka_port: i32::from(config.advertised_port),
            fs: Arc::clone(&broker_config.fs),
        },
        listener,
    )
    .await
    .context("cannot start the cluster node")?;
    tracing::info!(raft = %raft_addr, peers = config.peers.len(), "cluster node started");
    Ok(node)
}
