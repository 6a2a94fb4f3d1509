//! Partition leadership across the cluster: announcing the partitions this node leads, the
//! leader of any partition (hosted here or announced), and preferred-leader rebalancing.

use crate::broker::{now_ms, Broker};
use crate::partition::Role;
use chronik_replication::leadership::Announcement;
use chronik_replication::transport::GroupId;
use chronik_types::limits::LEADER_HANDOVER_PEER_ANSWERED_WITHIN_MS;
use std::sync::Arc;
use std::time::Duration;

impl Broker {
    /// Announces the partitions this node leads, with their leader epochs and in-sync
    /// replicas, to every peer: nodes without a replica of a partition answer Metadata from
    /// these announcements (called every second).
    pub fn announce_leadership(&self) {
        let Some(node) = &self.cluster else {
            return;
        };
        let now = now_ms();
        let mut announcements = Vec::new();
        for t in self.all_topics() {
            for p in &t.partitions {
                let Role::Leader { epoch } = p.role() else {
                    continue;
                };
                let replicas = node
                    .with_image(|i| {
                        i.replicas(&t.record.name, p.tp.partition)
                            .map(<[u64]>::to_vec)
                    })
                    .unwrap_or_default();
                announcements.push(Announcement {
                    group: GroupId::new(t.record.name.clone(), p.tp.partition),
                    term: u64::try_from(epoch).unwrap_or(0),
                    isr: p.in_sync_replicas(node.node_id, &replicas, now),
                });
            }
        }
        node.announce_leadership(announcements);
    }

    /// The leader and leader epoch of partition `index` of `topic`: from its Raft group when
    /// this node hosts it, else as its leader announced it (cluster mode).
    pub fn partition_leader(&self, topic: &str, index: i32) -> Option<(u64, i32)> {
        let node = self.cluster.as_ref()?;
        match self.partition(topic, index) {
            Ok(p) => match p.role() {
                Role::Leader { epoch } => Some((node.node_id, epoch)),
                Role::Follower { leader, epoch } => leader.map(|l| (l, epoch)),
                Role::Local => Some((node.node_id, 0)),
            },
            Err(_) => node
                .announced_leader(&GroupId::new(topic, index))
                .map(|a| (a.leader, i32::try_from(a.term).unwrap_or(i32::MAX))),
        }
    }

    /// Preferred-leader rebalancing over every partition this node hosts: ends hand-overs that
    /// are over and, when `may_start` (Kafka's `leader.imbalance.check.interval.seconds` has
    /// passed and `auto.leader.rebalance.enable`), starts new ones. See `preferred_leader`.
    pub fn check_preferred_leaders(&self, may_start: bool) {
        let Some(node) = &self.cluster else {
            return;
        };
        let now = now_ms();
        for t in self.all_topics() {
            for p in &t.partitions {
                let replicas = node
                    .with_image(|i| {
                        i.replicas(&t.record.name, p.tp.partition)
                            .map(<[u64]>::to_vec)
                    })
                    .unwrap_or_default();
                let answering = |peer: u64| {
                    node.peer_answered_within(
                        peer,
                        Duration::from_millis(LEADER_HANDOVER_PEER_ANSWERED_WITHIN_MS),
                    )
                };
                let Some(to) =
                    p.check_preferred_leader(node.node_id, &replicas, answering, now, may_start)
                else {
                    continue;
                };
                let node = Arc::clone(node);
                let group = GroupId::new(t.record.name.clone(), p.tp.partition);
                let delay = chronik_replication::config::handover_elect_delay(replicas.len());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(e) = node.ask_to_elect(to, group.clone()).await {
                        tracing::warn!(%group, to, error = %e, "asking the preferred replica to campaign failed");
                    }
                });
            }
        }
    }
}
