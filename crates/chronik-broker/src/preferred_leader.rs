//! Preferred-leader rebalancing (Kafka's `auto.leader.rebalance.enable`), as a pure state
//! machine per partition replica.
//!
//! The first replica of a partition's replica set is its preferred leader; placement spreads
//! preferred leaders evenly, so a cluster whose partitions are led by their preferred replicas
//! spreads its leaders evenly too. After a node restarts, others lead its partitions; once its
//! replica is back in sync, the leader that is not preferred hands the partition back.
//!
//! openraft 0.9 has no leader transfer, so the hand-over is built from what it has: the leader
//! stops taking writes and stops sending heartbeats. The preferred replica has the group's
//! shortest election timeout (timeouts are ranked by place in the replica set), so it times out
//! first and is elected; the old leader sees the new term and follows. A hand-over that has not
//! happened by `LEADER_HANDOVER_TIMEOUT_MS` is abandoned (heartbeats resume) and that partition
//! is not tried again for `LEADER_HANDOVER_RETRY_BACKOFF_MS`. Raft's safety never depends on
//! any of this: at worst a partition is briefly unavailable, as in any election.

use chronik_types::limits::{
    LEADER_HANDOVER_LAG_ENTRIES_MAX, LEADER_HANDOVER_RETRY_BACKOFF_MS, LEADER_HANDOVER_TIMEOUT_MS,
};

/// What the replica knows at a check.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaView<'a> {
    /// This node.
    pub me: u64,
    /// The term in which this node leads the partition, if it does.
    pub leading_term: Option<u64>,
    /// The partition's replica set, preferred leader first.
    pub replicas: &'a [u64],
    /// The replicas in sync with this leader (meaningful while it leads).
    pub in_sync: &'a [u64],
    /// Whether the preferred replica answered this node recently (it is up).
    pub preferred_answering: bool,
    /// How many Raft entries the preferred replica is behind this leader (`None`: unknown).
    pub preferred_lag_entries: Option<u64>,
}

/// What the caller must do after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Stop taking writes and stop sending heartbeats: `to` should be elected.
    StartHandover {
        to: u64,
    },
    /// Resume heartbeats (and writes, if still leading). `moved`: the leadership moved on.
    EndHandover {
        moved: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Handover {
    to: u64,
    term: u64,
    started_ms: i64,
}

/// The rebalancing state of one partition replica.
#[derive(Debug, Default)]
pub struct PreferredLeader {
    handover: Option<Handover>,
    retry_after_ms: i64,
}

impl PreferredLeader {
    /// Whether a hand-over is under way (the leader takes no writes meanwhile).
    pub fn handing_over(&self) -> bool {
        self.handover.is_some()
    }

    /// One check at `now_ms`. A hand-over under way is ended when the leadership moved or its
    /// deadline passed; a new one starts only when `may_start` (the periodic imbalance check
    /// is due), this node leads, is not the preferred replica, and the preferred replica is in
    /// sync, answering, and at most `LEADER_HANDOVER_LAG_ENTRIES_MAX` entries behind. (The ISR
    /// alone is not enough: a replica that stopped a moment ago is still in it.)
    pub fn check(&mut self, view: ReplicaView<'_>, now_ms: i64, may_start: bool) -> Action {
        if let Some(h) = self.handover {
            if view.leading_term != Some(h.term) {
                self.handover = None;
                return Action::EndHandover { moved: true };
            }
            if now_ms.saturating_sub(h.started_ms) >= LEADER_HANDOVER_TIMEOUT_MS {
                self.handover = None;
                self.retry_after_ms = now_ms.saturating_add(LEADER_HANDOVER_RETRY_BACKOFF_MS);
                return Action::EndHandover { moved: false };
            }
            return Action::Nothing;
        }
        let (Some(term), true) = (view.leading_term, may_start) else {
            return Action::Nothing;
        };
        if now_ms < self.retry_after_ms {
            return Action::Nothing;
        }
        let ready = view.preferred_answering
            && view
                .preferred_lag_entries
                .is_some_and(|lag| lag <= LEADER_HANDOVER_LAG_ENTRIES_MAX);
        match view.replicas.first() {
            Some(&preferred)
                if ready && preferred != view.me && view.in_sync.contains(&preferred) =>
            {
                self.handover = Some(Handover {
                    to: preferred,
                    term,
                    started_ms: now_ms,
                });
                Action::StartHandover { to: preferred }
            }
            _ => Action::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLICAS: [u64; 3] = [1, 2, 3];

    fn leading(me: u64, term: u64, in_sync: &[u64]) -> ReplicaView<'_> {
        ReplicaView {
            me,
            leading_term: Some(term),
            replicas: &REPLICAS,
            in_sync,
            preferred_answering: true,
            preferred_lag_entries: Some(0),
        }
    }

    fn following(me: u64) -> ReplicaView<'static> {
        ReplicaView {
            me,
            leading_term: None,
            replicas: &REPLICAS,
            in_sync: &[],
            preferred_answering: false,
            preferred_lag_entries: None,
        }
    }

    #[test]
    fn a_leader_that_is_not_preferred_hands_over_once_the_preferred_is_in_sync() {
        let mut p = PreferredLeader::default();
        assert_eq!(p.check(leading(2, 5, &[2, 3]), 0, true), Action::Nothing);
        assert!(!p.handing_over());
        assert_eq!(
            p.check(leading(2, 5, &[1, 2, 3]), 10, true),
            Action::StartHandover { to: 1 }
        );
        assert!(p.handing_over());
        // The preferred replica is elected: this node follows in a later term.
        assert_eq!(
            p.check(following(2), 1_500, false),
            Action::EndHandover { moved: true }
        );
        assert!(!p.handing_over());
    }

    #[test]
    fn the_preferred_leader_and_followers_never_hand_over() {
        let mut p = PreferredLeader::default();
        assert_eq!(p.check(leading(1, 5, &[1, 2, 3]), 0, true), Action::Nothing);
        assert_eq!(p.check(following(3), 0, true), Action::Nothing);
        let mut empty = PreferredLeader::default();
        let view = ReplicaView {
            me: 1,
            leading_term: Some(1),
            replicas: &[],
            in_sync: &[1],
            preferred_answering: true,
            preferred_lag_entries: Some(0),
        };
        assert_eq!(empty.check(view, 0, true), Action::Nothing);
    }

    #[test]
    fn no_hand_over_to_a_preferred_replica_that_is_down_or_behind() {
        let mut p = PreferredLeader::default();
        let in_sync = [1, 2, 3];
        let down = ReplicaView {
            preferred_answering: false,
            ..leading(2, 5, &in_sync)
        };
        assert_eq!(
            p.check(down, 0, true),
            Action::Nothing,
            "stopped a moment ago"
        );
        let behind = ReplicaView {
            preferred_lag_entries: Some(LEADER_HANDOVER_LAG_ENTRIES_MAX + 1),
            ..leading(2, 5, &in_sync)
        };
        assert_eq!(
            p.check(behind, 0, true),
            Action::Nothing,
            "still catching up"
        );
        let unknown = ReplicaView {
            preferred_lag_entries: None,
            ..leading(2, 5, &in_sync)
        };
        assert_eq!(p.check(unknown, 0, true), Action::Nothing, "never matched");
        let close = ReplicaView {
            preferred_lag_entries: Some(LEADER_HANDOVER_LAG_ENTRIES_MAX),
            ..leading(2, 5, &in_sync)
        };
        assert_eq!(p.check(close, 0, true), Action::StartHandover { to: 1 });
    }

    #[test]
    fn a_hand_over_starts_only_when_the_periodic_check_is_due() {
        let mut p = PreferredLeader::default();
        assert_eq!(
            p.check(leading(3, 2, &[1, 2, 3]), 0, false),
            Action::Nothing
        );
        assert_eq!(
            p.check(leading(3, 2, &[1, 2, 3]), 0, true),
            Action::StartHandover { to: 1 }
        );
    }

    #[test]
    fn a_hand_over_that_does_not_happen_is_abandoned_and_backed_off() {
        let mut p = PreferredLeader::default();
        let view = leading(2, 7, &[1, 2, 3]);
        assert_eq!(p.check(view, 0, true), Action::StartHandover { to: 1 });
        assert_eq!(
            p.check(view, LEADER_HANDOVER_TIMEOUT_MS - 1, true),
            Action::Nothing
        );
        assert_eq!(
            p.check(view, LEADER_HANDOVER_TIMEOUT_MS, true),
            Action::EndHandover { moved: false }
        );
        assert!(!p.handing_over());
        let backoff_ends = LEADER_HANDOVER_TIMEOUT_MS + LEADER_HANDOVER_RETRY_BACKOFF_MS;
        assert_eq!(p.check(view, backoff_ends - 1, true), Action::Nothing);
        assert_eq!(
            p.check(view, backoff_ends, true),
            Action::StartHandover { to: 1 }
        );
    }

    #[test]
    fn a_new_term_of_the_same_leader_ends_the_hand_over() {
        // Re-elected before the check saw it follow: the old hand-over is over, heartbeats must
        // resume in the new term.
        let mut p = PreferredLeader::default();
        assert_eq!(
            p.check(leading(2, 7, &[1, 2, 3]), 0, true),
            Action::StartHandover { to: 1 }
        );
        assert_eq!(
            p.check(leading(2, 8, &[2, 3]), 100, true),
            Action::EndHandover { moved: true }
        );
    }
}
