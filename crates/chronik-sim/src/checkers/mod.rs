//! Invariant checkers, one per file. Each returns the violations it found, as sentences.

pub mod acked_not_lost;
pub mod high_watermark_monotonic;
pub mod identical_logs;
pub mod no_duplicates;
pub mod offsets_contiguous;
pub mod one_leader_per_term;

/// One stored batch: its base offset and the write ids of its records.
pub type StoredBatch = (i64, Vec<u64>);

/// The final state every checker looks at: each replica's id and stored batches after the run
/// converged.
pub struct FinalLogs {
    pub replicas: Vec<(u64, Vec<StoredBatch>)>,
}
