//! One offset, one record: after the run converged every replica holds the same batches at
//! the same offsets (in a retention run, from the first offset all of them still hold).

use super::FinalLogs;

pub fn check(logs: &FinalLogs) -> Vec<String> {
    let mut out = Vec::new();
    let Some((first_id, first)) = logs.replicas.first() else {
        return out;
    };
    let first = logs.from_common_start(first);
    for (id, log) in logs.replicas.iter().skip(1) {
        let log = logs.from_common_start(log);
        if log != first {
            let diverge = first
                .iter()
                .zip(log)
                .position(|(a, b)| a != b)
                .unwrap_or(first.len().min(log.len()));
            out.push(format!(
                "replicas {first_id} and {id} differ from batch {diverge} ({} vs {} batches)",
                first.len(),
                log.len()
            ));
        }
    }
    out
}
