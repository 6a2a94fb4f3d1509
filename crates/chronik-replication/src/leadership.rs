//! `LeaderDirectory`: partition leadership as announced by the nodes that lead. A node answers
//! Metadata and FindCoordinator for a partition it has no replica of (a cluster larger than a
//! topic's replication factor) from here. Every node announces the partitions it leads to every
//! peer once a second; an announcement not renewed within `LEADERSHIP_ANNOUNCEMENT_TTL_MS` is
//! forgotten (its leader stopped or lost the partition), and a later term replaces an earlier
//! one. Pure: time is passed in.

use crate::transport::GroupId;
use crate::types::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// How long an announcement counts without being renewed (three announcement intervals).
pub const LEADERSHIP_ANNOUNCEMENT_TTL_MS: u64 = 3_000;
/// How often a node announces the partitions it leads.
pub const LEADERSHIP_ANNOUNCEMENT_INTERVAL_MS: u64 = 1_000;

/// One partition a node leads: its term (the leader epoch) and in-sync replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub group: GroupId,
    pub term: u64,
    pub isr: Vec<NodeId>,
}

/// What is known of a partition's leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncedLeader {
    pub leader: NodeId,
    pub term: u64,
    pub isr: Vec<NodeId>,
}

#[derive(Debug)]
struct Entry {
    known: AnnouncedLeader,
    at: Instant,
}

#[derive(Debug, Default)]
pub struct LeaderDirectory {
    entries: Mutex<HashMap<GroupId, Entry>>,
}

impl LeaderDirectory {
    /// Records `from`'s announcements, received at `now`.
    pub fn record(&self, from: NodeId, announcements: Vec<Announcement>, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for a in announcements {
            let replace = entries
                .get(&a.group)
                .is_none_or(|e| a.term >= e.known.term || !fresh(e, now));
            if replace {
                entries.insert(
                    a.group,
                    Entry {
                        known: AnnouncedLeader {
                            leader: from,
                            term: a.term,
                            isr: a.isr,
                        },
                        at: now,
                    },
                );
            }
        }
        entries.retain(|_, e| fresh(e, now));
    }

    /// The announced leader of `group`, if an announcement is current at `now`.
    pub fn leader(&self, group: &GroupId, now: Instant) -> Option<AnnouncedLeader> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(group)
            .filter(|e| fresh(e, now))
            .map(|e| e.known.clone())
    }
}

fn fresh(e: &Entry, now: Instant) -> bool {
    now.saturating_duration_since(e.at) <= Duration::from_millis(LEADERSHIP_ANNOUNCEMENT_TTL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(p: i32, term: u64, isr: &[NodeId]) -> Announcement {
        Announcement {
            group: GroupId::new("t", p),
            term,
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn an_announced_leader_is_known_until_its_announcements_stop() {
        let d = LeaderDirectory::default();
        let t0 = Instant::now();
        d.record(2, vec![ann(0, 3, &[2, 3])], t0);
        let g = GroupId::new("t", 0);
        let expect = AnnouncedLeader {
            leader: 2,
            term: 3,
            isr: vec![2, 3],
        };
        assert_eq!(d.leader(&g, t0), Some(expect.clone()));
        let ttl = Duration::from_millis(LEADERSHIP_ANNOUNCEMENT_TTL_MS);
        assert_eq!(d.leader(&g, t0 + ttl), Some(expect));
        assert_eq!(d.leader(&g, t0 + ttl + Duration::from_millis(1)), None);
        assert_eq!(d.leader(&GroupId::new("t", 1), t0), None);
    }

    #[test]
    fn a_later_term_replaces_an_earlier_one_and_not_the_other_way_round() {
        let d = LeaderDirectory::default();
        let t0 = Instant::now();
        let g = GroupId::new("t", 0);
        d.record(1, vec![ann(0, 4, &[1, 2])], t0);
        d.record(2, vec![ann(0, 5, &[2])], t0);
        assert_eq!(d.leader(&g, t0).map(|l| (l.leader, l.term)), Some((2, 5)));
        // A deposed leader's late announcement of its old term changes nothing...
        d.record(1, vec![ann(0, 4, &[1, 2])], t0 + Duration::from_millis(10));
        assert_eq!(d.leader(&g, t0).map(|l| (l.leader, l.term)), Some((2, 5)));
        // ...unless the newer one has expired meanwhile.
        let later = t0 + Duration::from_millis(LEADERSHIP_ANNOUNCEMENT_TTL_MS + 1);
        d.record(1, vec![ann(0, 4, &[1])], later);
        assert_eq!(
            d.leader(&g, later).map(|l| (l.leader, l.term)),
            Some((1, 4))
        );
    }
}
