//! What a cluster node reports about itself: `GET /cluster` and the Raft gauges of `/metrics`.

use crate::broker::{now_ms, Broker};

impl Broker {
    /// Cluster mode: the first Raft group of this node (the controller's or a partition's) that
    /// stopped because its storage failed, and why: the data directory is unusable. (Groups
    /// shut down on purpose, as when a topic is deleted, do not count.)
    pub fn failed_group(&self) -> Option<String> {
        let node = self.cluster.as_ref()?;
        if let Some(e) = node.controller_failure() {
            return Some(format!("controller: {e}"));
        }
        for t in self.all_topics() {
            for p in &t.partitions {
                let Some(raft) = p.raft() else { continue };
                if let Some(e) = chronik_replication::node::storage_failure(raft) {
                    return Some(format!("{}: {e}", p.tp));
                }
            }
        }
        None
    }

    /// `GET /cluster`: nodes, the controller leader, and every partition this node hosts with
    /// its leader, epoch, replicas, offsets and (where this node leads) each follower's lag in
    /// Raft entries. `None` on a single node.
    pub fn cluster_status(&self) -> Option<serde_json::Value> {
        let node = self.cluster.as_ref()?;
        let brokers = node.with_image(|i| {
            i.brokers
                .iter()
                .map(|(id, b)| serde_json::json!({"id": id, "host": b.host, "port": b.port}))
                .collect::<Vec<_>>()
        });
        let mut partitions = Vec::new();
        for t in self.all_topics() {
            for p in &t.partitions {
                let (log_start, hw, leo) = Broker::offsets(p);
                let replicas = node
                    .with_image(|i| {
                        i.replicas(&t.record.name, p.tp.partition)
                            .map(<[u64]>::to_vec)
                    })
                    .unwrap_or_default();
                let (leader, epoch, lag) = match p.raft() {
                    Some(raft) => {
                        let m = raft.metrics();
                        let m = m.borrow();
                        let last = m.last_log_index.unwrap_or(0);
                        let lag: serde_json::Map<String, serde_json::Value> = m
                            .replication
                            .as_ref()
                            .map(|rep| {
                                rep.iter()
                                    .filter(|(id, _)| **id != node.node_id)
                                    .map(|(id, matched)| {
                                        let behind = match matched {
                                            Some(l) => last.saturating_sub(l.index),
                                            None => last + 1,
                                        };
                                        (id.to_string(), serde_json::json!(behind))
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        (m.current_leader, m.current_term, lag)
                    }
                    None => (None, 0, serde_json::Map::new()),
                };
                partitions.push(serde_json::json!({
                    "topic": t.record.name,
                    "partition": p.tp.partition,
                    "leader": leader,
                    "leader_epoch": epoch,
                    "replicas": replicas,
                    "log_start_offset": log_start,
                    "high_watermark": hw,
                    "log_end_offset": leo,
                    "follower_lag_entries": lag,
                }));
            }
        }
        Some(serde_json::json!({
            "node_id": node.node_id,
            "voters": node.voters(),
            "controller_leader": node.controller_leader(),
            "brokers": brokers,
            "partitions": partitions,
        }))
    }

    /// Samples every led partition's in-sync replicas and sets the per-node Raft gauges of
    /// `/metrics` (called every second).
    pub fn record_raft_metrics(&self) {
        let Some(node) = &self.cluster else {
            return;
        };
        let mut leading = 0u64;
        let mut max_lag = 0u64;
        let mut terms = 0u64;
        let now = now_ms();
        for t in self.all_topics() {
            for p in &t.partitions {
                p.sample_isr(now);
                let Some(raft) = p.raft() else { continue };
                let m = raft.metrics();
                let m = m.borrow();
                terms += m.current_term;
                if !m.state.is_leader() {
                    continue;
                }
                leading += 1;
                let last = m.last_log_index.unwrap_or(0);
                if let Some(rep) = &m.replication {
                    for (id, matched) in rep.iter() {
                        if *id != node.node_id {
                            let behind = match matched {
                                Some(l) => last.saturating_sub(l.index),
                                None => last + 1,
                            };
                            max_lag = max_lag.max(behind);
                        }
                    }
                }
            }
        }
        metrics::gauge!("chronik_raft_leader_partitions").set(leading as f64);
        metrics::gauge!("chronik_raft_follower_lag_entries_max").set(max_lag as f64);
        // Each election raises a group's term by one: the sum counts elections so far.
        metrics::gauge!("chronik_raft_terms_sum").set(terms as f64);
        let controller_leader = node.controller_leader().map_or(-1.0, |l| l as f64);
        metrics::gauge!("chronik_raft_controller_leader").set(controller_leader);
    }
}
