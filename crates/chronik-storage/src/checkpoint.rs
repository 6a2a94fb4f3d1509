//! Offset checkpoint files (`recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`)
//! in Kafka's text format:
//!
//! ```text
//! 0                     <- version
//! 2                     <- number of entries
//! orders 0 1234         <- topic, partition, offset
//! orders 1 99
//! ```

use crate::error::{IoContext, StorageError};
use crate::fsutil::write_atomic;
use chronik_types::{Offset, TopicPartition};
use std::collections::BTreeMap;
use std::path::Path;

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
const VERSION: &str = "0";

pub fn encode(entries: &BTreeMap<TopicPartition, Offset>) -> String {
    let mut s = format!("{VERSION}\n{}\n", entries.len());
    for (tp, off) in entries {
        s.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, off));
    }
    s
}

pub fn decode(text: &str) -> Option<BTreeMap<TopicPartition, Offset>> {
    let mut lines = text.lines();
    if lines.next()? != VERSION {
        return None;
    }
    let count: usize = lines.next()?.parse().ok()?;
    let mut out = BTreeMap::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let topic = parts.next()?;
        let partition: i32 = parts.next()?.parse().ok()?;
        let offset: Offset = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        out.insert(TopicPartition::new(topic, partition), offset);
    }
    (out.len() == count).then_some(out)
}

/// Reads a checkpoint; a missing file is empty, a malformed one is an error.
pub fn read(path: &Path) -> Result<BTreeMap<TopicPartition, Offset>, StorageError> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode(&text).ok_or_else(|| StorageError::Corrupt {
            path: path.to_path_buf(),
            reason: "malformed offset checkpoint".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).at(path),
    }
}

pub fn write(path: &Path, entries: &BTreeMap<TopicPartition, Offset>) -> Result<(), StorageError> {
    write_atomic(path, encode(entries).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        let mut m = BTreeMap::new();
        m.insert(TopicPartition::new("orders", 1), 99);
        m.insert(TopicPartition::new("orders", 0), 1234);
        let text = encode(&m);
        assert_eq!(text, "0\n2\norders 0 1234\norders 1 99\n");
        assert_eq!(decode(&text), Some(m));
    }

    #[test]
    fn malformed_is_rejected() {
        assert_eq!(decode("1\n0\n"), None);
        assert_eq!(decode("0\n2\na 0 1\n"), None);
        assert_eq!(decode("0\n1\na x 1\n"), None);
    }
}
