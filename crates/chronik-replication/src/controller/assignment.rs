//! Replica placement: which brokers hold each partition. Pure.

use crate::types::NodeId;

/// Replica sets for partitions `first..first + count` over `brokers` (sorted), `rf` replicas
/// each. Consecutive partitions start at consecutive brokers, from a start derived from the
/// topic name, so partitions and preferred leaders (the first replica) spread evenly.
pub fn assign(
    topic: &str,
    brokers: &[NodeId],
    first: i32,
    count: i32,
    rf: usize,
) -> Vec<Vec<NodeId>> {
    let n = brokers.len();
    if n == 0 {
        return Vec::new();
    }
    let start = topic.bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    (first..first + count)
        .map(|p| {
            let p = usize::try_from(p).unwrap_or(0);
            (0..rf.min(n))
                .filter_map(|r| brokers.get((start + p + r) % n).copied())
                .collect()
        })
        .collect()
}

/// Kafka's `default.replication.factor` for a cluster: min(3, voters).
pub fn default_replication_factor(voters: usize) -> usize {
    voters.clamp(1, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn replicas_are_distinct_and_leaders_spread_evenly() {
        let brokers = [1, 2, 3];
        let a = assign("orders", &brokers, 0, 12, 3);
        assert_eq!(a.len(), 12);
        let mut leaders: BTreeMap<NodeId, usize> = BTreeMap::new();
        for r in &a {
            assert_eq!(r.len(), 3);
            let mut s = r.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 3, "distinct replicas: {r:?}");
            *leaders.entry(r[0]).or_default() += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![4, 4, 4]);
    }

    #[test]
    fn replication_factor_is_capped_by_brokers() {
        assert_eq!(assign("t", &[7], 0, 2, 3), vec![vec![7], vec![7]]);
        assert_eq!(default_replication_factor(1), 1);
        assert_eq!(default_replication_factor(5), 3);
        let added = assign("t", &[1, 2, 3, 4, 5], 2, 1, 3);
        assert_eq!(added[0].len(), 3);
    }
}
