//! Producer-state files of a replicated partition: its idempotent-producer and transaction
//! state as of an offset (where its Raft log was purged, or where an installed snapshot ends),
//! so that the state survives the deletion of the segments it was built from and travels in the
//! Raft snapshot to a replica that starts its log over (Kafka's `<offset>.snapshot` files).
//! One file per offset, `<offset, 20 digits>.producer-state`, JSON, written atomically; an
//! older file is removed only once a newer one is in use. Format: docs/formats/producer-state.md.

use crate::batch::BatchHeader;
use crate::control::ControlType;
use crate::error::{IoContext, StorageError};
use crate::producer_state::ProducerStateManager;
use crate::txn_state::TransactionState;
use chronik_types::Offset;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATE_SNAPSHOT_SUFFIX: &str = ".producer-state";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// The state of every batch below this offset (a batch boundary).
    pub offset: Offset,
    pub producers: ProducerStateManager,
    pub txns: TransactionState,
}

impl StateSnapshot {
    /// The empty state at `offset` (nothing below it is known).
    pub fn empty(offset: Offset) -> Self {
        Self {
            offset,
            ..Self::default()
        }
    }

    /// Adds one batch (at or after `offset`, in offset order) and moves `offset` past it.
    pub fn record(&mut self, h: &BatchHeader, marker: Option<(ControlType, i32)>) {
        self.producers.record(h);
        if let Some((_, coordinator_epoch)) = marker {
            self.producers
                .record_marker(h.producer_id, coordinator_epoch);
        }
        self.txns.record(h, marker.map(|(control, _)| control));
        self.offset = self.offset.max(h.next_offset());
    }

    pub fn encode(&self) -> Result<Vec<u8>, StorageError> {
        serde_json::to_vec(self).map_err(|e| StorageError::Corrupt {
            path: PathBuf::from(STATE_SNAPSHOT_SUFFIX),
            reason: e.to_string(),
        })
    }

    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self, StorageError> {
        serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("producer state: {e}"),
        })
    }

    pub fn path(dir: &Path, offset: Offset) -> PathBuf {
        dir.join(format!("{offset:020}{STATE_SNAPSHOT_SUFFIX}"))
    }

    /// The offsets of the files in `dir`, ascending.
    pub fn list(dir: &Path) -> Result<Vec<Offset>, StorageError> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StorageError::io(dir, e)),
        };
        for entry in entries {
            let name = entry.at(dir)?.file_name();
            let Some(stem) = name
                .to_str()
                .and_then(|n| n.strip_suffix(STATE_SNAPSHOT_SUFFIX))
            else {
                continue;
            };
            if let Ok(offset) = stem.parse::<Offset>() {
                out.push(offset);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The file of `offset` in `dir`.
    pub fn load(dir: &Path, offset: Offset) -> Result<Self, StorageError> {
        let path = Self::path(dir, offset);
        let bytes = std::fs::read(&path).at(&path)?;
        let s = Self::decode(&bytes, &path)?;
        if s.offset != offset {
            return Err(StorageError::Corrupt {
                path,
                reason: format!(
                    "producer state of offset {} in the file of {offset}",
                    s.offset
                ),
            });
        }
        Ok(s)
    }

    /// Writes this state's file in `dir`, durably.
    pub fn store(&self, dir: &Path) -> Result<(), StorageError> {
        crate::fsutil::write_atomic(&Self::path(dir, self.offset), &self.encode()?)
    }

    /// Removes the files of `dir` whose offset `doomed` says, durably.
    pub fn remove_where(dir: &Path, doomed: impl Fn(Offset) -> bool) -> Result<(), StorageError> {
        let mut removed = false;
        for offset in Self::list(dir)?.into_iter().filter(|o| doomed(*o)) {
            let path = Self::path(dir, offset);
            std::fs::remove_file(&path).at(&path)?;
            removed = true;
        }
        if removed {
            crate::fsutil::sync_dir(dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchHeader;
    use crate::control::ControlType;

    fn header(pid: i64, base: Offset, seq: i32, attributes: i16) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 0,
            partition_leader_epoch: 2,
            magic: 2,
            crc: 0,
            attributes,
            last_offset_delta: 1,
            base_timestamp: 1_700_000_000_000,
            max_timestamp: 1_700_000_000_000,
            producer_id: pid,
            producer_epoch: 3,
            base_sequence: seq,
            records_count: 2,
        }
    }

    /// Golden bytes: docs/formats/producer-state.md shows this file.
    #[test]
    fn golden_bytes() -> Result<(), StorageError> {
        let mut s = StateSnapshot {
            offset: 40,
            ..StateSnapshot::default()
        };
        // Producer 7: an idempotent batch at 10..11; producer 9: a transaction opened at 20,
        // aborted by a marker at 30 (coordinator epoch 4), then another one open from 32.
        let batches = [
            (header(7, 10, 0, 0), None),
            (header(9, 20, 0, 0x10), None),
            (header(9, 30, -1, 0x30), Some(ControlType::Abort)),
            (header(9, 32, 2, 0x10), None),
        ];
        for (h, control) in &batches {
            s.producers.record(h);
            if control.is_some() {
                s.producers.record_marker(h.producer_id, 4);
            }
            s.txns.record(h, *control);
        }
        let golden = r#"{"offset":40,"producers":{"producers":{"7":{"epoch":3,"batches":[{"first_seq":0,"last_seq":1,"base_offset":10,"last_offset":11,"max_timestamp":1700000000000}],"coordinator_epoch":null},"9":{"epoch":3,"batches":[{"first_seq":0,"last_seq":1,"base_offset":20,"last_offset":21,"max_timestamp":1700000000000},{"first_seq":2,"last_seq":3,"base_offset":32,"last_offset":33,"max_timestamp":1700000000000}],"coordinator_epoch":4}},"first_offset":10},"txns":{"ongoing":{"9":32},"aborted":[{"producer_id":9,"first_offset":20,"last_offset":30}]}}"#;
        assert_eq!(String::from_utf8_lossy(&s.encode()?), golden);
        assert_eq!(StateSnapshot::decode(golden.as_bytes(), Path::new("x"))?, s);
        Ok(())
    }

    #[test]
    fn files_are_named_by_offset_listed_in_order_and_checked_against_their_name(
    ) -> Result<(), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageError::io("tempdir", e))?;
        for offset in [300, 40, 1_000] {
            StateSnapshot::empty(offset).store(dir.path())?;
        }
        assert!(dir
            .path()
            .join("00000000000000000040.producer-state")
            .exists());
        assert_eq!(StateSnapshot::list(dir.path())?, vec![40, 300, 1_000]);
        assert_eq!(
            StateSnapshot::load(dir.path(), 300)?,
            StateSnapshot::empty(300)
        );
        // A file whose content names another offset is refused.
        std::fs::copy(
            StateSnapshot::path(dir.path(), 40),
            StateSnapshot::path(dir.path(), 41),
        )
        .map_err(|e| StorageError::io("copy", e))?;
        assert!(StateSnapshot::load(dir.path(), 41).is_err());
        StateSnapshot::remove_where(dir.path(), |o| o < 300)?;
        assert_eq!(StateSnapshot::list(dir.path())?, vec![300, 1_000]);
        Ok(())
    }
}
