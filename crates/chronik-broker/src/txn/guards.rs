//! KIP-890 part 1 in a cluster: a transactional batch that would open a transaction in a
//! partition is verified with the transaction's coordinator (maybe on another node) before it
//! is proposed, and a marker written in between voids the verification (Kafka's verification
//! guard), so a late batch of an ended transaction can never land after its marker and open a
//! transaction nobody ends.
//!
//! Each replicated partition has a `TxnGuards`. Everything that orders proposals of one
//! producer happens under its lock: a batch proposed without verification, a verified batch's
//! proposal after checking its guard, and a marker's proposal, which closes the guard.
//! Verifications of one partition run one at a time (the lane), in arrival order, and a batch
//! of a producer with a verification pending waits for it, so one producer's batches are
//! proposed in the order they came.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Verifications under this token, `pending` of them not finished yet.
    Open { token: u64, pending: usize },
    /// A marker was proposed since the last verification.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    guards: HashMap<i64, Guard>,
    next_token: u64,
}

/// The verification guards of one partition, by producer id.
#[derive(Debug, Default)]
pub struct TxnGuards {
    state: Mutex<State>,
    lane: tokio::sync::Mutex<()>,
}

impl TxnGuards {
    /// Admits a transactional batch of `producer_id`: if its producer has a transaction open
    /// here (`ongoing`, from the applied log), no marker was proposed since, and no
    /// verification of its batches is pending, `propose` runs at once (under the lock) and its
    /// result is returned. Otherwise the batch must be verified: `Err(token)`.
    pub fn admit<T>(
        &self,
        producer_id: i64,
        ongoing: bool,
        propose: impl FnOnce() -> T,
    ) -> Result<T, u64> {
        let mut s = self.lock();
        match s.guards.get(&producer_id).copied() {
            None if ongoing => return Ok(propose()),
            Some(Guard::Open { pending: 0, .. }) if ongoing => return Ok(propose()),
            _ => {}
        }
        let token = match s.guards.get(&producer_id).copied() {
            Some(Guard::Open { token, pending }) => {
                s.guards.insert(
                    producer_id,
                    Guard::Open {
                        token,
                        pending: pending + 1,
                    },
                );
                token
            }
            None | Some(Guard::Closed) => {
                s.next_token += 1;
                let token = s.next_token;
                s.guards
                    .insert(producer_id, Guard::Open { token, pending: 1 });
                token
            }
        };
        Err(token)
    }

    /// Finishes the verification `token` of a batch of `producer_id`: when the coordinator
    /// found it in an open transaction (`verified`) and no marker was proposed since the guard
    /// was taken, `propose` runs (under the lock) and `Some` is returned; else `None`.
    pub fn complete<T>(
        &self,
        producer_id: i64,
        token: u64,
        verified: bool,
        propose: impl FnOnce() -> T,
    ) -> Option<T> {
        let mut s = self.lock();
        let Some(Guard::Open { token: t, pending }) = s.guards.get(&producer_id).copied() else {
            return None;
        };
        if t != token {
            return None;
        }
        let pending = pending.saturating_sub(1);
        if !verified && pending == 0 {
            s.guards.remove(&producer_id);
        } else {
            s.guards.insert(producer_id, Guard::Open { token, pending });
        }
        verified.then(propose)
    }

    /// A marker of `producer_id`'s transaction: `propose` (which queues the marker) runs under
    /// the lock, after closing the producer's guard.
    pub fn close<T>(&self, producer_id: i64, propose: impl FnOnce() -> T) -> T {
        let mut s = self.lock();
        s.guards.insert(producer_id, Guard::Closed);
        propose()
    }

    /// Waits for this partition's verification lane (held while one batch is verified).
    pub async fn lane(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lane.lock().await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: i64 = 7;

    #[test]
    fn a_batch_of_an_open_transaction_goes_straight_through() {
        let g = TxnGuards::default();
        assert_eq!(g.admit(PID, true, || "proposed"), Ok("proposed"));
    }

    #[test]
    fn a_first_batch_is_verified_then_proposed() {
        let g = TxnGuards::default();
        let token = g.admit(PID, false, || ()).unwrap_err();
        assert_eq!(
            g.complete(PID, token, true, || "proposed"),
            Some("proposed")
        );
    }

    #[test]
    fn a_marker_between_verification_and_proposal_voids_it() {
        let g = TxnGuards::default();
        let token = g.admit(PID, false, || ()).unwrap_err();
        g.close(PID, || ());
        assert_eq!(g.complete(PID, token, true, || "proposed"), None);
    }

    #[test]
    fn after_a_marker_even_an_ongoing_looking_producer_is_verified() {
        // The marker is proposed but not applied yet: the log still shows the transaction open.
        let g = TxnGuards::default();
        g.close(PID, || ());
        assert!(g.admit(PID, true, || ()).is_err());
    }

    #[test]
    fn later_batches_wait_for_a_pending_verification() {
        let g = TxnGuards::default();
        let first = g.admit(PID, false, || ()).unwrap_err();
        // The producer's next batch must not overtake the one being verified.
        let second = g.admit(PID, true, || ()).unwrap_err();
        assert_eq!(first, second);
        assert_eq!(g.complete(PID, first, true, || 1), Some(1));
        assert_eq!(g.complete(PID, second, true, || 2), Some(2));
        // Nothing pending any more: batches of the open transaction go straight through.
        assert_eq!(g.admit(PID, true, || 3), Ok(3));
    }

    #[test]
    fn a_new_transaction_after_a_marker_gets_a_new_token() {
        let g = TxnGuards::default();
        let old = g.admit(PID, false, || ()).unwrap_err();
        g.close(PID, || ());
        let new = g.admit(PID, false, || ()).unwrap_err();
        assert_ne!(old, new);
        assert_eq!(g.complete(PID, old, true, || "old"), None);
        assert_eq!(g.complete(PID, new, true, || "new"), Some("new"));
    }

    #[test]
    fn a_refused_verification_leaves_no_guard() {
        let g = TxnGuards::default();
        let token = g.admit(PID, false, || ()).unwrap_err();
        assert_eq!(g.complete(PID, token, false, || ()), None);
        assert!(g.lock().guards.is_empty());
    }
}
