//! Incremental fetch sessions (KIP-227): the broker remembers a client's partitions and fetch
//! offsets so later requests only name what changed and responses only carry what changed.
//! Pure: callers pass `now_ms`; no I/O.

use chronik_types::limits::FETCH_SESSIONS_MAX;
use chronik_types::Offset;
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeMap, HashMap};

/// Session epoch meaning "no session / close the session".
pub const FINAL_EPOCH: i32 = -1;
/// Session epoch of a request that opens a new session.
pub const INITIAL_EPOCH: i32 = 0;

/// One partition a fetch reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    pub topic: String,
    pub topic_id: uuid::Uuid,
    pub partition: i32,
    pub fetch_offset: Offset,
    pub max_bytes: i32,
}

/// What a partition's last response said, to decide whether an incremental response includes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SentState {
    pub high_watermark: Offset,
    pub last_stable_offset: Offset,
    pub log_start_offset: Offset,
}

#[derive(Debug, Clone)]
struct SessionPartition {
    target: FetchTarget,
    sent: Option<SentState>,
}

#[derive(Debug)]
struct FetchSession {
    partitions: BTreeMap<(String, i32), SessionPartition>,
    next_epoch: i32,
    last_used_ms: i64,
}

/// The outcome of the session step of a fetch.
#[derive(Debug)]
pub struct SessionContext {
    /// Session id to put in the response (0 for sessionless fetches).
    pub session_id: i32,
    /// Every partition to read, in session order.
    pub targets: Vec<FetchTarget>,
    /// Incremental: the response carries only partitions that changed.
    pub incremental: bool,
}

#[derive(Debug, Default)]
pub struct FetchSessionCache {
    sessions: HashMap<i32, FetchSession>,
    last_id: i32,
}

fn next_epoch(e: i32) -> i32 {
    if e == i32::MAX {
        1
    } else {
        e + 1
    }
}

impl FetchSessionCache {
    /// Applies a request's session fields. `forgotten` are partitions to drop from the session.
    pub fn begin(
        &mut self,
        session_id: i32,
        epoch: i32,
        targets: Vec<FetchTarget>,
        forgotten: &[(String, i32)],
        now_ms: i64,
    ) -> Result<SessionContext, ResponseError> {
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if session_id != 0 {
                self.sessions.remove(&session_id);
            }
            if epoch == FINAL_EPOCH {
                return Ok(SessionContext {
                    session_id: 0,
                    targets,
                    incremental: false,
                });
            }
            let id = self.new_session(&targets, now_ms);
            return Ok(SessionContext {
                session_id: id,
                targets,
                incremental: false,
            });
        }
        let session = self
            .sessions
            .get_mut(&session_id)
            .ok_or(ResponseError::FetchSessionIdNotFound)?;
        if session.next_epoch != epoch {
            return Err(ResponseError::InvalidFetchSessionEpoch);
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used_ms = now_ms;
        for key in forgotten {
            session.partitions.remove(key);
        }
        for t in targets {
            let key = (t.topic.clone(), t.partition);
            match session.partitions.get_mut(&key) {
                Some(sp) => sp.target = t,
                None => {
                    session.partitions.insert(
                        key,
                        SessionPartition {
                            target: t,
                            sent: None,
                        },
                    );
                }
            }
        }
        Ok(SessionContext {
            session_id,
            targets: session
                .partitions
                .values()
                .map(|sp| sp.target.clone())
                .collect(),
            incremental: true,
        })
    }

    fn new_session(&mut self, targets: &[FetchTarget], now_ms: i64) -> i32 {
        if self.sessions.len() >= FETCH_SESSIONS_MAX {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used_ms)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.sessions.remove(&id);
            }
        }
        loop {
            self.last_id = if self.last_id == i32::MAX {
                1
            } else {
                self.last_id + 1
            };
            if !self.sessions.contains_key(&self.last_id) {
                break;
            }
        }
        let partitions = targets
            .iter()
            .map(|t| {
                (
                    (t.topic.clone(), t.partition),
                    SessionPartition {
                        target: t.clone(),
                        sent: None,
                    },
                )
            })
            .collect();
        self.sessions.insert(
            self.last_id,
            FetchSession {
                partitions,
                next_epoch: 1,
                last_used_ms: now_ms,
            },
        );
        self.last_id
    }

    /// Records what is being sent for a partition and says whether an incremental response
    /// must include it: it has records or an error, or its offsets changed since last sent.
    pub fn should_send(
        &mut self,
        session_id: i32,
        topic: &str,
        partition: i32,
        state: SentState,
        has_data_or_error: bool,
    ) -> bool {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return true;
        };
        let Some(sp) = session.partitions.get_mut(&(topic.to_string(), partition)) else {
            return true;
        };
        let changed = sp.sent != Some(state);
        sp.sent = Some(state);
        has_data_or_error || changed
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: i32, off: Offset) -> FetchTarget {
        FetchTarget {
            topic: "t".into(),
            topic_id: uuid::Uuid::nil(),
            partition: p,
            fetch_offset: off,
            max_bytes: 100,
        }
    }

    #[test]
    fn sessionless_fetch_has_no_session() {
        let mut c = FetchSessionCache::default();
        let ctx = c.begin(0, FINAL_EPOCH, vec![t(0, 0)], &[], 0).unwrap();
        assert_eq!(ctx.session_id, 0);
        assert!(c.is_empty());
    }

    #[test]
    fn incremental_fetch_keeps_partitions_and_applies_changes() {
        let mut c = FetchSessionCache::default();
        let ctx = c
            .begin(0, INITIAL_EPOCH, vec![t(0, 0), t(1, 5)], &[], 0)
            .unwrap();
        let id = ctx.session_id;
        assert!(id > 0);
        let ctx = c.begin(id, 1, vec![t(0, 7)], &[], 1).unwrap();
        assert!(ctx.incremental);
        assert_eq!(ctx.targets, vec![t(0, 7), t(1, 5)]);
        let ctx = c.begin(id, 2, vec![], &[("t".into(), 1)], 2).unwrap();
        assert_eq!(ctx.targets, vec![t(0, 7)]);
    }

    #[test]
    fn wrong_epoch_and_unknown_session_are_errors() {
        let mut c = FetchSessionCache::default();
        let id = c
            .begin(0, INITIAL_EPOCH, vec![t(0, 0)], &[], 0)
            .unwrap()
            .session_id;
        assert_eq!(
            c.begin(id, 5, vec![], &[], 0).unwrap_err(),
            ResponseError::InvalidFetchSessionEpoch
        );
        assert_eq!(
            c.begin(id + 100, 1, vec![], &[], 0).unwrap_err(),
            ResponseError::FetchSessionIdNotFound
        );
    }

    #[test]
    fn unchanged_partitions_are_left_out_of_incremental_responses() {
        let mut c = FetchSessionCache::default();
        let id = c
            .begin(0, INITIAL_EPOCH, vec![t(0, 0)], &[], 0)
            .unwrap()
            .session_id;
        let s = SentState {
            high_watermark: 3,
            last_stable_offset: 3,
            log_start_offset: 0,
        };
        assert!(c.should_send(id, "t", 0, s, false));
        assert!(!c.should_send(id, "t", 0, s, false));
        assert!(c.should_send(id, "t", 0, s, true));
        let s2 = SentState {
            high_watermark: 4,
            last_stable_offset: 3,
            log_start_offset: 0,
        };
        assert!(c.should_send(id, "t", 0, s2, false));
        // A transaction ending moves only the last stable offset: sent too.
        let s3 = SentState {
            last_stable_offset: 4,
            ..s2
        };
        assert!(c.should_send(id, "t", 0, s3, false));
    }
}
