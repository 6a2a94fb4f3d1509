//! Invariant checkers, one per file. Each returns the violations it found, as sentences.

pub mod acked_not_lost;
pub mod high_watermark_monotonic;
pub mod identical_logs;
pub mod log_start;
pub mod no_duplicates;
pub mod offsets_contiguous;
pub mod one_leader_per_term;

/// One stored batch: its base offset and the write ids of its records.
pub type StoredBatch = (i64, Vec<u64>);

/// The final state every checker looks at: each replica's id and stored batches after the run
/// converged.
pub struct FinalLogs {
    pub replicas: Vec<(u64, Vec<StoredBatch>)>,
    /// Retention ran: each replica may have deleted a prefix of its log (its own).
    pub retention: bool,
}

impl FinalLogs {
    /// The first offset every replica still holds: where the logs are compared from (0
    /// without retention, where `log_start` requires every log to start at 0).
    pub fn common_start(&self) -> i64 {
        if !self.retention {
            return 0;
        }
        self.replicas
            .iter()
            .filter_map(|(_, log)| log.first().map(|(base, _)| *base))
            .max()
            .unwrap_or(0)
    }

    /// A replica's batches from the common start on.
    pub fn from_common_start<'a>(&self, log: &'a [StoredBatch]) -> &'a [StoredBatch] {
        let start = self.common_start();
        let skip = log.partition_point(|(base, _)| *base < start);
        log.get(skip..).unwrap_or_default()
    }
}
