//! Without retention nothing is ever deleted: every replica's log starts at offset 0.

use super::FinalLogs;

pub fn check(logs: &FinalLogs) -> Vec<String> {
    if logs.retention {
        return Vec::new();
    }
    logs.replicas
        .iter()
        .filter_map(|(id, log)| {
            let (base, _) = log.first()?;
            (*base != 0).then(|| format!("replica {id}: log starts at {base}, not 0"))
        })
        .collect()
}
