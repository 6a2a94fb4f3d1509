//! `raft-entries`: the Raft-only entries of a partition replica (a new leader's blank entry,
//! membership changes), kept out of the Kafka offset space.
//!
//! Each record is `[u32 length][u32 CRC-32C of the payload][payload: JSON]`, big-endian, with
//! the payload `{"index", "term", "offset", "membership"}` (`offset` = the Kafka log end offset
//! when the entry was appended). A torn or corrupt tail is cut at open. Truncation and purge
//! rewrite the file atomically; it stays small (leader changes and membership changes only).

use crate::entry_index::RaftOnlyLoc;
use crate::types::Membership;
use chronik_storage::error::IoContext;
use chronik_storage::fs::{FileSystem, LogFile};
use chronik_storage::{fsutil, StorageError};
use chronik_types::Offset;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const RAFT_ENTRIES_FILE: &str = "raft-entries";
const RECORD_HEADER_BYTES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftOnlyEntry {
    pub index: u64,
    pub term: u64,
    pub offset: Offset,
    /// `None` for a blank entry.
    pub membership: Option<Membership>,
    /// A record batch that was not appended (a producer's retry or a sequence error), and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::types::NotAppended>,
}

impl RaftOnlyEntry {
    pub fn loc(&self) -> RaftOnlyLoc {
        RaftOnlyLoc {
            index: self.index,
            term: self.term,
            offset: self.offset,
        }
    }
}

/// Encodes one record.
pub fn encode(entry: &RaftOnlyEntry) -> Result<Vec<u8>, serde_json::Error> {
    let payload = serde_json::to_vec(entry)?;
    let mut out = Vec::with_capacity(RECORD_HEADER_BYTES + payload.len());
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes the records of a file; returns them and the length of the valid prefix.
pub fn decode_all(bytes: &[u8]) -> (Vec<RaftOnlyEntry>, usize) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(header) = bytes.get(pos..pos + RECORD_HEADER_BYTES) {
        let (len, crc) = header.split_at(4);
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let start = pos + RECORD_HEADER_BYTES;
        let Some(payload) = bytes.get(start..start + len) else {
            break;
        };
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<RaftOnlyEntry>(payload) else {
            break;
        };
        out.push(entry);
        pos = start + len;
    }
    (out, pos)
}

#[derive(Debug)]
pub struct RaftEntriesFile {
    fs: Arc<dyn FileSystem>,
    path: PathBuf,
    file: Arc<dyn LogFile>,
    len: u64,
    entries: Vec<RaftOnlyEntry>,
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl RaftEntriesFile {
    /// Opens (or creates) the file in `dir`, cutting a torn tail.
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(RAFT_ENTRIES_FILE);
        let exists = path.exists();
        let file = fs.open_log(&path, !exists).at(&path)?;
        let size = file.size_bytes().at(&path)?;
        let mut bytes = vec![0u8; usize::try_from(size).unwrap_or(0)];
        file.read_exact_at(&mut bytes, 0).at(&path)?;
        let (entries, valid) = decode_all(&bytes);
        if (valid as u64) < size {
            tracing::warn!(path = %path.display(), valid_bytes = valid, file_bytes = size,
                "cutting a torn tail of the Raft-only entries");
            file.set_len(valid as u64).at(&path)?;
            file.sync_data().at(&path)?;
        }
        Ok(Self {
            fs,
            path,
            file,
            len: valid as u64,
            entries,
        })
    }

    pub fn entries(&self) -> &[RaftOnlyEntry] {
        &self.entries
    }

    pub fn get(&self, index: u64) -> Option<&RaftOnlyEntry> {
        self.entries
            .binary_search_by_key(&index, |e| e.index)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// The last membership entry at or below `index`.
    pub fn last_membership_upto(&self, index: u64) -> Option<&RaftOnlyEntry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.index <= index && e.membership.is_some())
    }

    /// Appends one entry (not yet durable: call `sync`).
    pub fn append(&mut self, entry: RaftOnlyEntry) -> Result<(), StorageError> {
        let bytes = encode(&entry).map_err(|e| corrupt(&self.path, e))?;
        self.file.write_all_at(&bytes, self.len).at(&self.path)?;
        self.len += bytes.len() as u64;
        self.entries.push(entry);
        Ok(())
    }

    pub fn sync(&self) -> Result<(), StorageError> {
        self.file.sync_data().at(&self.path)
    }

    /// Removes entries from `index` on, durably.
    pub fn truncate_from(&mut self, index: u64) -> Result<(), StorageError> {
        if self.entries.iter().all(|e| e.index < index) {
            return Ok(());
        }
        self.entries.retain(|e| e.index < index);
        self.rewrite()
    }

    /// Forgets entries up to `index`, keeping the last membership and the last log-start
    /// request (DeleteRecords: the log start it set holds again at the next start) among them,
    /// durably.
    pub fn purge_upto(&mut self, index: u64) -> Result<(), StorageError> {
        let keep_membership = self.last_membership_upto(index).map(|e| e.index);
        let keep_log_start = self
            .entries
            .iter()
            .rev()
            .find(|e| {
                e.index <= index
                    && matches!(e.outcome, Some(crate::types::NotAppended::LogStart { .. }))
            })
            .map(|e| e.index);
        let before = self.entries.len();
        self.entries.retain(|e| {
            e.index > index || Some(e.index) == keep_membership || Some(e.index) == keep_log_start
        });
        if self.entries.len() == before {
            return Ok(());
        }
        self.rewrite()
    }

    /// Replaces every entry with `entries`, durably (a snapshot was installed).
    pub fn replace_all(&mut self, entries: Vec<RaftOnlyEntry>) -> Result<(), StorageError> {
        self.entries = entries;
        self.rewrite()
    }

    fn rewrite(&mut self) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        for e in &self.entries {
            bytes.extend(encode(e).map_err(|err| corrupt(&self.path, err))?);
        }
        fsutil::write_atomic(&self.path, &bytes)?;
        self.file = self.fs.open_log(&self.path, false).at(&self.path)?;
        self.len = bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn blank(index: u64, term: u64, offset: Offset) -> RaftOnlyEntry {
        RaftOnlyEntry {
            index,
            term,
            offset,
            membership: None,
            outcome: None,
        }
    }

    #[test]
    fn a_purge_keeps_the_last_log_start_request() -> Result<(), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageError::io(Path::new("."), e))?;
        let fs = chronik_storage::fs::real();
        let mut f = RaftEntriesFile::open(Arc::clone(&fs), dir.path())?;
        let log_start = |index, offset| RaftOnlyEntry {
            outcome: Some(crate::types::NotAppended::LogStart { offset }),
            ..blank(index, 2, 10)
        };
        f.append(log_start(3, 5))?;
        f.append(blank(4, 2, 10))?;
        f.append(log_start(6, 8))?;
        f.append(blank(9, 2, 10))?;
        f.sync()?;
        f.purge_upto(7)?;
        let f = RaftEntriesFile::open(fs, dir.path())?;
        let idx: Vec<u64> = f.entries().iter().map(|e| e.index).collect();
        assert_eq!(
            idx,
            vec![6, 9],
            "the last log-start request below the purge stays"
        );
        Ok(())
    }

    /// Golden bytes: docs/formats/raft-entries.md shows this record.
    #[test]
    fn golden_bytes() {
        let bytes = encode(&blank(7, 2, 120)).unwrap_or_default();
        let payload = br#"{"index":7,"term":2,"offset":120,"membership":null}"#;
        assert_eq!(&bytes[..4], &(payload.len() as u32).to_be_bytes());
        assert_eq!(&bytes[4..8], &crc32c::crc32c(payload).to_be_bytes());
        assert_eq!(&bytes[8..], payload);
        assert_eq!(
            &bytes[..8],
            &[0x00, 0x00, 0x00, 0x33, 0x99, 0x4b, 0xc2, 0xd1]
        );
    }

    #[test]
    fn torn_tail_is_cut_and_entries_survive_reopen() -> Result<(), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageError::io("tempdir", e))?;
        let fs = chronik_storage::fs::real();
        let mut f = RaftEntriesFile::open(Arc::clone(&fs), dir.path())?;
        let members = Membership::new(vec![BTreeSet::from([1, 2, 3])], None);
        f.append(RaftOnlyEntry {
            index: 0,
            term: 0,
            offset: 0,
            membership: Some(members.clone()),
            outcome: None,
        })?;
        f.append(blank(1, 1, 0))?;
        f.sync()?;
        // A torn third record: half of its bytes.
        let third = encode(&blank(5, 2, 40)).unwrap_or_default();
        let path = dir.path().join(RAFT_ENTRIES_FILE);
        let mut all = std::fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
        all.extend_from_slice(&third[..third.len() / 2]);
        std::fs::write(&path, &all).map_err(|e| StorageError::io(&path, e))?;
        let mut f = RaftEntriesFile::open(Arc::clone(&fs), dir.path())?;
        assert_eq!(f.entries().len(), 2);
        assert_eq!(
            f.last_membership_upto(9).and_then(|e| e.membership.clone()),
            Some(members)
        );
        f.append(blank(4, 2, 30))?;
        f.truncate_from(1)?;
        assert_eq!(f.entries().len(), 1);
        f.append(blank(1, 3, 0))?;
        f.purge_upto(1)?;
        let f = RaftEntriesFile::open(fs, dir.path())?;
        let idx: Vec<u64> = f.entries().iter().map(|e| e.index).collect();
        assert_eq!(idx, vec![0], "the last membership is kept through a purge");
        Ok(())
    }
}
