//! The server's configuration: command-line flags, `CHRONIK_<FLAG>` environment variables and
//! a TOML file (`--config`), merged with precedence flag > env > file > default, then validated.

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Deserialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// `--raft-addr` when not given.
pub const DEFAULT_RAFT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 5001);

/// Chronik: a Kafka-wire-compatible streaming server.
#[derive(Debug, Parser, Default)]
#[command(name = "chronik-server", version, about)]
pub struct Cli {
    /// This node's id. [default: 1]
    #[arg(long, env = "CHRONIK_NODE_ID")]
    pub node_id: Option<i32>,
    /// Directory holding topics, partition logs and checkpoints. [default: ./data]
    #[arg(long, env = "CHRONIK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen address for Kafka clients. [default: 0.0.0.0:9092]
    #[arg(long, env = "CHRONIK_KAFKA_ADDR")]
    pub kafka_addr: Option<String>,
    /// Address given to clients in Metadata. [default: the Kafka listen address, 0.0.0.0 → 127.0.0.1]
    #[arg(long, env = "CHRONIK_ADVERTISED_ADDR")]
    pub advertised_addr: Option<String>,
    /// Listen address for GET /health/live, /health/ready and /metrics. [default: 0.0.0.0:6092]
    #[arg(long, env = "CHRONIK_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// Listen address for peer (Raft) traffic in a cluster. [default: 0.0.0.0:5001]
    #[arg(long, env = "CHRONIK_RAFT_ADDR")]
    pub raft_addr: Option<String>,
    /// Another voter of the cluster as ID=HOST:PORT, its peer address (repeatable; also
    /// CHRONIK_PEERS, comma-separated). Without any, the node is a single-node broker.
    #[arg(long = "peer", env = "CHRONIK_PEER", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Partitions of auto-created topics (Kafka's num.partitions). [default: 1]
    #[arg(long, env = "CHRONIK_NUM_PARTITIONS")]
    pub num_partitions: Option<i32>,
    /// Create topics on first Metadata request (Kafka's auto.create.topics.enable). [default: true]
    #[arg(long, env = "CHRONIK_AUTO_CREATE_TOPICS_ENABLE")]
    pub auto_create_topics_enable: Option<bool>,
    /// Delay before the first rebalance of an empty group ends (Kafka's
    /// group.initial.rebalance.delay.ms). [default: 3000]
    #[arg(long, env = "CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<i32>,
    /// Hand partitions back to their preferred leaders once these are in sync again (Kafka's
    /// auto.leader.rebalance.enable). [default: true]
    #[arg(long, env = "CHRONIK_AUTO_LEADER_REBALANCE_ENABLE")]
    pub auto_leader_rebalance_enable: Option<bool>,
    /// How often to look for partitions not led by their preferred leader (Kafka's
    /// leader.imbalance.check.interval.seconds). [default: 300]
    #[arg(long, env = "CHRONIK_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS")]
    pub leader_imbalance_check_interval_seconds: Option<u64>,
    /// How often logs are checked for segments to delete by retention.ms and retention.bytes
    /// (Kafka's log.retention.check.interval.ms, 300000 there). [default: 30000]
    #[arg(long, env = "CHRONIK_LOG_RETENTION_CHECK_INTERVAL_MS")]
    pub log_retention_check_interval_ms: Option<u64>,
    /// TEST ONLY: put partition logs on a fault-injecting file layer controlled by
    /// `PUT /test/faults?fail_syncs=..&disk_full=..&torn_write_bytes=..&sync_delay_ms=..` on the
    /// HTTP address. Never enable in production. [default: false]
    #[arg(long, env = "CHRONIK_TEST_FAULT_INJECTION")]
    pub test_fault_injection: Option<bool>,
    /// TOML file with any of the settings above (snake_case keys).
    #[arg(long, env = "CHRONIK_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands other than serving.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Verify every segment, index, checkpoint and metadata file of a (stopped) server's data
    /// directory; print each problem with its file and offset; exit 1 if there is any.
    Check {
        /// The data directory to check.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// The same settings as read from the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub node_id: Option<i32>,
    pub data_dir: Option<PathBuf>,
    pub kafka_addr: Option<String>,
    pub advertised_addr: Option<String>,
    pub http_addr: Option<String>,
    pub raft_addr: Option<String>,
    pub peers: Option<Vec<String>>,
    pub num_partitions: Option<i32>,
    pub auto_create_topics_enable: Option<bool>,
    pub group_initial_rebalance_delay_ms: Option<i32>,
    pub auto_leader_rebalance_enable: Option<bool>,
    pub leader_imbalance_check_interval_seconds: Option<u64>,
    pub log_retention_check_interval_ms: Option<u64>,
    pub test_fault_injection: Option<bool>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_id: i32,
    pub data_dir: PathBuf,
    pub kafka_addr: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub http_addr: SocketAddr,
    pub raft_addr: Option<SocketAddr>,
    pub peers: Vec<(i32, String)>,
    pub num_partitions: i32,
    pub auto_create_topics_enable: bool,
    pub group_initial_rebalance_delay_ms: i32,
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_seconds: u64,
    pub log_retention_check_interval_ms: u64,
    pub test_fault_injection: bool,
}

fn resolve(what: &str, addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .with_context(|| format!("invalid {what} '{addr}': expected HOST:PORT"))
}

fn split_host_port(what: &str, addr: &str) -> Result<(String, u16)> {
    let (host, port) = addr
        .rsplit_once(':')
        .with_context(|| format!("invalid {what} '{addr}': expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("invalid {what} '{addr}': bad port"))?;
    if host.is_empty() || port == 0 {
        bail!("invalid {what} '{addr}': expected HOST:PORT with a non-zero port");
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

impl Config {
    /// Merges the sources and validates the result.
    pub fn load(cli: Cli) -> Result<Self> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let node_id = cli.node_id.or(file.node_id).unwrap_or(1);
        if node_id < 0 {
            bail!("invalid node-id {node_id}: must be 0 or more");
        }
        let kafka = cli
            .kafka_addr
            .or(file.kafka_addr)
            .unwrap_or_else(|| "0.0.0.0:9092".into());
        let kafka_addr = resolve("kafka-addr", &kafka)?;
        let advertised = cli
            .advertised_addr
            .or(file.advertised_addr)
            .unwrap_or_else(|| {
                let host = if kafka_addr.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    kafka_addr.ip().to_string()
                };
                format!("{host}:{}", kafka_addr.port())
            });
        let (advertised_host, advertised_port) = split_host_port("advertised-addr", &advertised)?;
        let http = cli
            .http_addr
            .or(file.http_addr)
            .unwrap_or_else(|| "0.0.0.0:6092".into());
        let http_addr = resolve("http-addr", &http)?;
        let raft_addr = cli
            .raft_addr
            .or(file.raft_addr)
            .map(|a| resolve("raft-addr", &a))
            .transpose()?;
        // `CHRONIK_PEER` (clap) or the plural `CHRONIK_PEERS`, both comma-separated.
        let env_peers: Vec<String> = std::env::var("CHRONIK_PEERS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let peer_list = if !cli.peers.is_empty() {
            cli.peers
        } else if !env_peers.is_empty() {
            env_peers
        } else {
            file.peers.unwrap_or_default()
        };
        let mut peers = Vec::new();
        for p in peer_list {
            let (id, addr) = p
                .split_once('=')
                .with_context(|| format!("invalid peer '{p}': expected ID=HOST:PORT"))?;
            let id: i32 = id
                .parse()
                .with_context(|| format!("invalid peer '{p}': bad node id"))?;
            split_host_port("peer", addr)?;
            if peers.iter().any(|(other, _)| *other == id) {
                bail!("invalid peer '{p}': node id {id} is named twice");
            }
            peers.push((id, addr.to_string()));
        }
        if peers.iter().any(|(id, _)| *id == node_id) {
            bail!("--peer names this node's own id {node_id}; list only the other voters");
        }
        let num_partitions = cli.num_partitions.or(file.num_partitions).unwrap_or(1);
        if !(1..=chronik_types::limits::PARTITIONS_PER_TOPIC_MAX).contains(&num_partitions) {
            bail!(
                "invalid num-partitions {num_partitions}: must be 1..={}",
                chronik_types::limits::PARTITIONS_PER_TOPIC_MAX
            );
        }
        let group_initial_rebalance_delay_ms = cli
            .group_initial_rebalance_delay_ms
            .or(file.group_initial_rebalance_delay_ms)
            .unwrap_or(3_000);
        if group_initial_rebalance_delay_ms < 0 {
            bail!("invalid group-initial-rebalance-delay-ms {group_initial_rebalance_delay_ms}: must be 0 or more");
        }
        let leader_imbalance_check_interval_seconds = cli
            .leader_imbalance_check_interval_seconds
            .or(file.leader_imbalance_check_interval_seconds)
            .unwrap_or(300);
        if leader_imbalance_check_interval_seconds == 0 {
            bail!("invalid leader-imbalance-check-interval-seconds 0: must be 1 or more");
        }
        let log_retention_check_interval_ms = cli
            .log_retention_check_interval_ms
            .or(file.log_retention_check_interval_ms)
            .unwrap_or(chronik_types::limits::RETENTION_CHECK_INTERVAL_MS);
        if log_retention_check_interval_ms == 0 {
            bail!("invalid log-retention-check-interval-ms 0: must be 1 or more");
        }
        Ok(Self {
            auto_leader_rebalance_enable: cli
                .auto_leader_rebalance_enable
                .or(file.auto_leader_rebalance_enable)
                .unwrap_or(true),
            leader_imbalance_check_interval_seconds,
            log_retention_check_interval_ms,
            test_fault_injection: cli
                .test_fault_injection
                .or(file.test_fault_injection)
                .unwrap_or(false),
            group_initial_rebalance_delay_ms,
            node_id,
            data_dir: cli
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            kafka_addr,
            advertised_host,
            advertised_port,
            http_addr,
            raft_addr,
            peers,
            num_partitions,
            auto_create_topics_enable: cli
                .auto_create_topics_enable
                .or(file.auto_create_topics_enable)
                .unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::load(Cli::default()).unwrap();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.kafka_addr.to_string(), "0.0.0.0:9092");
        assert_eq!(
            (c.advertised_host.as_str(), c.advertised_port),
            ("127.0.0.1", 9092)
        );
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:6092");
        assert!(c.auto_create_topics_enable);
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "node_id = 7\nnum_partitions = 3\n").unwrap();
        let cli = Cli {
            node_id: Some(9),
            config: Some(path),
            ..Cli::default()
        };
        let c = Config::load(cli).unwrap();
        assert_eq!(c.node_id, 9);
        assert_eq!(c.num_partitions, 3);
    }

    #[test]
    fn bad_values_are_rejected() {
        let bad_addr = Cli {
            kafka_addr: Some("nonsense".into()),
            ..Cli::default()
        };
        assert!(Config::load(bad_addr).is_err());
        let bad_peer = Cli {
            peers: vec!["x=host:1".into()],
            ..Cli::default()
        };
        assert!(Config::load(bad_peer).is_err());
        let bad_parts = Cli {
            num_partitions: Some(0),
            ..Cli::default()
        };
        assert!(Config::load(bad_parts).is_err());
    }
}
