//! `IsrTracker`: which replicas of a partition this node leads are in sync, Kafka's way: a
//! follower is in sync while it has caught up with the leader's log end within the last
//! `replica.lag.time.max.ms`. Pure; fed one sample of the leader's replication progress at a
//! time.

use std::collections::BTreeMap;

type NodeId = u64;

#[derive(Debug, Default)]
pub struct IsrTracker {
    /// The leader term the samples belong to; a new term starts over.
    term: u64,
    /// The leader's last log index at the previous sample.
    previous_end: Option<u64>,
    /// When each follower was last seen caught up (ms).
    caught_up_ms: BTreeMap<NodeId, i64>,
}

impl IsrTracker {
    /// One sample: the leader's `term` and last log index, and each follower's matched index.
    /// A follower that has reached the leader's log end of the previous sample (or of this one)
    /// has caught up now. At the start of a term every follower counts as caught up, as a new
    /// Kafka leader starts from the previous ISR.
    pub fn sample(
        &mut self,
        term: u64,
        leader_end: u64,
        matched: impl IntoIterator<Item = (NodeId, Option<u64>)>,
        now_ms: i64,
    ) {
        let new_term = term != self.term || self.previous_end.is_none();
        if new_term {
            self.term = term;
            self.caught_up_ms.clear();
        }
        let bar = self.previous_end.unwrap_or(leader_end).min(leader_end);
        for (follower, index) in matched {
            if new_term || index.is_some_and(|i| i >= bar) {
                self.caught_up_ms.insert(follower, now_ms);
            }
        }
        self.previous_end = Some(leader_end);
    }

    /// The in-sync replicas among `replicas` in `term`: the leader and the followers caught up
    /// within `lag_max_ms` (all of them before the term's first sample).
    pub fn in_sync(
        &self,
        term: u64,
        leader: NodeId,
        replicas: &[NodeId],
        now_ms: i64,
        lag_max_ms: i64,
    ) -> Vec<NodeId> {
        if term != self.term || self.previous_end.is_none() {
            return replicas.to_vec();
        }
        replicas
            .iter()
            .copied()
            .filter(|r| {
                *r == leader
                    || self
                        .caught_up_ms
                        .get(r)
                        .is_some_and(|t| now_ms - t <= lag_max_ms)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_that_stops_catching_up_leaves_the_isr_after_the_lag_time() {
        let mut t = IsrTracker::default();
        let replicas = [1, 2, 3];
        t.sample(5, 100, [(2, Some(100)), (3, Some(100))], 0);
        assert_eq!(t.in_sync(5, 1, &replicas, 0, 30_000), vec![1, 2, 3]);
        // Node 3 stops at 100 while the leader moves on; node 2 keeps up.
        for (i, now) in (1..=40).map(|s| s * 1_000).enumerate() {
            let end = 100 + (i as u64 + 1) * 10;
            t.sample(5, end, [(2, Some(end - 5)), (3, Some(100))], now);
        }
        assert_eq!(t.in_sync(5, 1, &replicas, 40_000, 30_000), vec![1, 2]);
        // It catches up again: back in sync.
        t.sample(5, 600, [(2, Some(600)), (3, Some(600))], 41_000);
        assert_eq!(t.in_sync(5, 1, &replicas, 41_000, 30_000), vec![1, 2, 3]);
    }

    #[test]
    fn a_new_term_starts_with_every_follower_in_sync() {
        let mut t = IsrTracker::default();
        assert_eq!(
            t.in_sync(1, 1, &[1, 2], 0, 30_000),
            vec![1, 2],
            "before any sample"
        );
        t.sample(1, 10, [(2, None)], 0);
        assert_eq!(t.in_sync(1, 1, &[1, 2], 31_000, 30_000), vec![1]);
        assert_eq!(
            t.in_sync(2, 1, &[1, 2], 31_000, 30_000),
            vec![1, 2],
            "a new term"
        );
        t.sample(2, 12, [(2, None)], 31_000);
        assert_eq!(t.in_sync(2, 1, &[1, 2], 31_000, 30_000), vec![1, 2]);
    }
}
