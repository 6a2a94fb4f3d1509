//! What a run did and saw: writes and their outcomes, faults, and observations of leaders and
//! high watermarks — the input of the checkers, and (as text) the trace whose hash shows that
//! one seed always gives the same run.

use chronik_replication::types::NodeId;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged after commit at this offset.
    Acked(i64),
    /// Failed or timed out: it may or may not be in the log.
    Unknown,
}

#[derive(Debug, Default)]
pub struct History {
    /// Every write: its value id and outcome (when known).
    pub writes: BTreeMap<u64, Option<Outcome>>,
    /// (node, incarnation) → high watermarks seen, in order.
    pub high_watermarks: BTreeMap<(NodeId, u64), Vec<i64>>,
    /// term → nodes seen leading in it.
    pub leaders: BTreeMap<u64, Vec<NodeId>>,
    /// One line per event, with its virtual time.
    pub trace: Vec<String>,
    pub faults: usize,
    /// Replicas that refused to start (recovery found the log unusable), and why.
    pub refused: Vec<String>,
}

impl History {
    pub fn event(&mut self, at_ms: u64, what: String) {
        self.trace.push(format!("{at_ms:>8} {what}"));
    }

    pub fn trace_hash(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.trace.hash(&mut h);
        h.finish()
    }

    pub fn acked(&self) -> impl Iterator<Item = (u64, i64)> + '_ {
        self.writes.iter().filter_map(|(id, o)| match o {
            Some(Outcome::Acked(offset)) => Some((*id, *offset)),
            _ => None,
        })
    }
}
