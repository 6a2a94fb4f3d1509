//! No acknowledged write is lost: every acked value is in the committed log, at the offset it
//! was acknowledged with, exactly once (in a retention run: every one acked at an offset all
//! replicas still hold).

use super::FinalLogs;
use crate::history::History;
use std::collections::BTreeMap;

pub fn check(h: &History, logs: &FinalLogs) -> Vec<String> {
    let Some((_, log)) = logs.replicas.first() else {
        return vec!["no replica to read the final log from".into()];
    };
    let mut at: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for (base, values) in log {
        for (i, v) in values.iter().enumerate() {
            at.entry(*v).or_default().push(base + i as i64);
        }
    }
    let mut out = Vec::new();
    let start = logs.common_start();
    for (id, offset) in h.acked().filter(|(_, offset)| *offset >= start) {
        match at.get(&id).map(Vec::as_slice) {
            None => out.push(format!("acked write {id} (offset {offset}) is lost")),
            Some([o]) if *o == offset => {}
            Some([o]) => out.push(format!(
                "acked write {id} was acked at {offset} but is at {o}"
            )),
            Some(many) => out.push(format!(
                "acked write {id} is stored {} times: {many:?}",
                many.len()
            )),
        }
    }
    out
}
