//! Offsets are contiguous: each batch starts where the one before it ended.

use super::FinalLogs;

pub fn check(logs: &FinalLogs) -> Vec<String> {
    let mut out = Vec::new();
    for (id, log) in &logs.replicas {
        let mut next = None;
        for (base, values) in log {
            if let Some(n) = next {
                if *base != n {
                    out.push(format!(
                        "replica {id}: batch at {base} after one ending at {n}"
                    ));
                }
            }
            next = Some(base + values.len() as i64);
        }
    }
    out
}
