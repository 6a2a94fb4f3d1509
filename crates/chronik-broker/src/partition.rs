//! A partition hosted by this broker: its identity and its log behind a lock.

use chronik_storage::PartitionLog;
use chronik_types::TopicPartition;
use std::sync::{Mutex, PoisonError};

#[derive(Debug)]
pub struct Partition {
    pub tp: TopicPartition,
    log: Mutex<PartitionLog>,
}

impl Partition {
    pub fn new(tp: TopicPartition, log: PartitionLog) -> Self {
        Self {
            tp,
            log: Mutex::new(log),
        }
    }

    /// Runs `f` with the log locked. Critical sections are short: page-cache writes and header
    /// reads only; fsync and fetch reads happen outside the lock.
    pub fn with_log<R>(&self, f: impl FnOnce(&mut PartitionLog) -> R) -> R {
        let mut guard = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    pub fn into_log(self) -> PartitionLog {
        self.log
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
