//! Producer ids for idempotent producers, unique across restarts: ids are handed out from
//! blocks, and a block's end is stored durably (`producer-id-block`) before any id of it is used.
//!
//! ```text
//! version=1
//! next_block_start=2000
//! ```

use chronik_storage::fsutil::write_atomic;
use chronik_storage::StorageError;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const PRODUCER_ID_BLOCK_FILE: &str = "producer-id-block";
/// Ids per block (Kafka's controller hands out blocks of 1000).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

#[derive(Debug)]
struct Block {
    next: i64,
    end: i64,
}

#[derive(Debug)]
pub struct ProducerIdManager {
    path: PathBuf,
    block: Mutex<Block>,
}

pub fn encode(next_block_start: i64) -> String {
    format!("version=1\nnext_block_start={next_block_start}\n")
}

pub fn decode(text: &str) -> Option<i64> {
    let mut lines = text.lines();
    if lines.next()? != "version=1" {
        return None;
    }
    lines
        .next()?
        .strip_prefix("next_block_start=")?
        .parse()
        .ok()
}

impl ProducerIdManager {
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(PRODUCER_ID_BLOCK_FILE);
        let start = match std::fs::read_to_string(&path) {
            Ok(text) => decode(&text).ok_or_else(|| StorageError::Corrupt {
                path: path.clone(),
                reason: "malformed producer id block file".into(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(StorageError::io(&path, e)),
        };
        Ok(Self {
            path,
            block: Mutex::new(Block {
                next: start,
                end: start,
            }),
        })
    }

    /// A producer id never handed out before, on this data directory.
    pub fn allocate(&self) -> Result<i64, StorageError> {
        let mut b = self
            .block
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if b.next >= b.end {
            let end = b.next + PRODUCER_ID_BLOCK_SIZE;
            write_atomic(&self.path, encode(end).as_bytes())?;
            b.end = end;
        }
        let id = b.next;
        b.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        assert_eq!(encode(2000), "version=1\nnext_block_start=2000\n");
        assert_eq!(decode("version=1\nnext_block_start=2000\n"), Some(2000));
        assert_eq!(decode("version=2\nnext_block_start=2000\n"), None);
    }

    #[test]
    fn ids_are_unique_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let m = ProducerIdManager::open(dir.path()).unwrap();
        let a = m.allocate().unwrap();
        let b = m.allocate().unwrap();
        assert_ne!(a, b);
        drop(m);
        let m = ProducerIdManager::open(dir.path()).unwrap();
        let c = m.allocate().unwrap();
        assert!(c > b, "{c} must be beyond the earlier block");
    }
}
