//! Sparse per-segment indexes: `OffsetIndex` (offset → file position) and `TimeIndex`
//! (timestamp → offset). Both are append-only files of fixed-size big-endian entries, mirrored
//! in memory; they are derived data, rebuilt from the segment whenever they look wrong.
//!
//! Offset index entry (8 bytes): `relative_offset: u32` (batch base offset − segment base offset),
//! `position: u32` (byte position of that batch in the `.log` file).
//! Time index entry (12 bytes): `timestamp: i64` (largest timestamp so far in the segment),
//! `relative_offset: u32` (base offset of the batch that raised it, relative to the segment base).

use crate::error::{IoContext, StorageError};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// One offset index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

impl OffsetEntry {
    pub fn to_bytes(self) -> [u8; OFFSET_INDEX_ENTRY_BYTES] {
        let mut b = [0u8; OFFSET_INDEX_ENTRY_BYTES];
        b[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        b[4..].copy_from_slice(&self.position.to_be_bytes());
        b
    }
    fn from_chunk(c: &[u8]) -> Option<Self> {
        Some(Self {
            relative_offset: u32::from_be_bytes(c.get(..4)?.try_into().ok()?),
            position: u32::from_be_bytes(c.get(4..8)?.try_into().ok()?),
        })
    }
}

impl TimeEntry {
    pub fn to_bytes(self) -> [u8; TIME_INDEX_ENTRY_BYTES] {
        let mut b = [0u8; TIME_INDEX_ENTRY_BYTES];
        b[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        b[8..].copy_from_slice(&self.relative_offset.to_be_bytes());
        b
    }
    fn from_chunk(c: &[u8]) -> Option<Self> {
        Some(Self {
            timestamp: i64::from_be_bytes(c.get(..8)?.try_into().ok()?),
            relative_offset: u32::from_be_bytes(c.get(8..12)?.try_into().ok()?),
        })
    }
}

/// Parses a whole offset index file; `None` if it is not a well-formed index for a log of
/// `log_bytes` bytes (wrong size, non-increasing entries, positions past the end).
pub fn parse_offset_index(bytes: &[u8], log_bytes: u64) -> Option<Vec<OffsetEntry>> {
    if !bytes.len().is_multiple_of(OFFSET_INDEX_ENTRY_BYTES) {
        return None;
    }
    let entries: Vec<OffsetEntry> = bytes
        .chunks(OFFSET_INDEX_ENTRY_BYTES)
        .map(OffsetEntry::from_chunk)
        .collect::<Option<_>>()?;
    let increasing = entries.windows(2).all(
        |w| matches!(w, [a, b] if a.relative_offset < b.relative_offset && a.position < b.position),
    );
    let in_range = entries.iter().all(|e| u64::from(e.position) < log_bytes);
    (increasing && in_range).then_some(entries)
}

/// Parses a whole time index file; `None` if malformed.
pub fn parse_time_index(bytes: &[u8]) -> Option<Vec<TimeEntry>> {
    if !bytes.len().is_multiple_of(TIME_INDEX_ENTRY_BYTES) {
        return None;
    }
    let entries: Vec<TimeEntry> = bytes
        .chunks(TIME_INDEX_ENTRY_BYTES)
        .map(TimeEntry::from_chunk)
        .collect::<Option<_>>()?;
    let increasing = entries.windows(2).all(|w| {
        matches!(w, [a, b] if a.timestamp < b.timestamp && a.relative_offset <= b.relative_offset)
    });
    increasing.then_some(entries)
}

/// An append-only index file plus its in-memory copy.
#[derive(Debug)]
pub struct IndexFile<E> {
    path: PathBuf,
    file: File,
    pub entries: Vec<E>,
}

impl<E> IndexFile<E> {
    /// Creates (truncating) an index file holding `entries`.
    pub fn create(
        path: &Path,
        entries: Vec<E>,
        encode: impl Fn(&E) -> Vec<u8>,
    ) -> Result<Self, StorageError> {
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .read(true)
            .open(path)
            .at(path)?;
        let mut buf = Vec::new();
        for e in &entries {
            buf.extend_from_slice(&encode(e));
        }
        file.write_all(&buf).at(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            entries,
        })
    }

    /// Opens an existing index file and parses it with `parse`; `Ok(None)` if missing or malformed.
    pub fn open(
        path: &Path,
        parse: impl Fn(&[u8]) -> Option<Vec<E>>,
    ) -> Result<Option<Self>, StorageError> {
        let mut file = match OpenOptions::new().read(true).append(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(path, e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).at(path)?;
        Ok(parse(&bytes).map(|entries| Self {
            path: path.to_path_buf(),
            file,
            entries,
        }))
    }

    pub fn append(&mut self, entry: E, bytes: &[u8]) -> Result<(), StorageError> {
        self.file.write_all(bytes).at(&self.path)?;
        self.entries.push(entry);
        Ok(())
    }

    pub fn sync(&self) -> Result<(), StorageError> {
        self.file.sync_data().at(&self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub type OffsetIndex = IndexFile<OffsetEntry>;
pub type TimeIndex = IndexFile<TimeEntry>;

/// Position of the last indexed batch whose base offset is at or below `relative_offset`.
pub fn lookup_position(entries: &[OffsetEntry], relative_offset: u32) -> u32 {
    let idx = entries.partition_point(|e| e.relative_offset <= relative_offset);
    idx.checked_sub(1)
        .and_then(|i| entries.get(i))
        .map_or(0, |e| e.position)
}

/// Relative offset of the first indexed batch whose timestamp bound is at or above `timestamp`.
pub fn lookup_time(entries: &[TimeEntry], timestamp: i64) -> Option<u32> {
    let idx = entries.partition_point(|e| e.timestamp < timestamp);
    // The batch that raised the bound past `timestamp` may be preceded by batches that also hold
    // later records, so start from the previous entry.
    idx.checked_sub(1)
        .and_then(|i| entries.get(i))
        .map(|e| e.relative_offset)
        .or(Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_entry_golden_bytes() {
        let e = OffsetEntry {
            relative_offset: 0x0102,
            position: 0x0a0b0c0d,
        };
        assert_eq!(e.to_bytes(), [0, 0, 1, 2, 0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(parse_offset_index(&e.to_bytes(), 0x0a0b0c0e), Some(vec![e]));
    }

    #[test]
    fn time_entry_golden_bytes() {
        let e = TimeEntry {
            timestamp: 0x1122334455667788,
            relative_offset: 7,
        };
        assert_eq!(
            e.to_bytes(),
            [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0, 0, 0, 7]
        );
        assert_eq!(parse_time_index(&e.to_bytes()), Some(vec![e]));
    }

    #[test]
    fn malformed_indexes_are_rejected() {
        assert!(parse_offset_index(&[0; 7], 100).is_none());
        let a = OffsetEntry {
            relative_offset: 5,
            position: 50,
        }
        .to_bytes();
        let b = OffsetEntry {
            relative_offset: 3,
            position: 60,
        }
        .to_bytes();
        assert!(parse_offset_index(&[a, b].concat(), 100).is_none());
        assert!(parse_offset_index(&a, 50).is_none());
    }

    #[test]
    fn lookup_finds_floor_entry() {
        let entries = vec![
            OffsetEntry {
                relative_offset: 0,
                position: 0,
            },
            OffsetEntry {
                relative_offset: 10,
                position: 100,
            },
            OffsetEntry {
                relative_offset: 20,
                position: 200,
            },
        ];
        assert_eq!(lookup_position(&entries, 0), 0);
        assert_eq!(lookup_position(&entries, 15), 100);
        assert_eq!(lookup_position(&entries, 25), 200);
        assert_eq!(lookup_position(&[], 25), 0);
    }
}
