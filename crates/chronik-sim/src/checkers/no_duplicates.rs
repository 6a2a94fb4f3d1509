//! Idempotent producers see no duplicates: a batch retried with the same sequence number is
//! stored once, however many times it was sent and whoever led.

use super::FinalLogs;
use crate::run::IDEMPOTENT_ID_BASE;
use std::collections::BTreeMap;

pub fn check(logs: &FinalLogs) -> Vec<String> {
    let mut out = Vec::new();
    for (replica, log) in &logs.replicas {
        let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
        for (_, values) in log {
            for v in values.iter().filter(|v| **v >= IDEMPOTENT_ID_BASE) {
                *seen.entry(*v).or_default() += 1;
            }
        }
        for (v, n) in seen.iter().filter(|(_, n)| **n > 1) {
            out.push(format!(
                "replica {replica}: idempotent write {} stored {n} times",
                v - IDEMPOTENT_ID_BASE
            ));
        }
    }
    out
}
