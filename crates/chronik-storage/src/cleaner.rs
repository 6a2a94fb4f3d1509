//! Log compaction (Kafka's `LogCleaner`): for `cleanup.policy=compact`, closed segments are
//! rewritten keeping only the latest record of each key, with offsets preserved. Tombstones (a key
//! with a null value) are kept for `delete.retention.ms` after the batch holding them was written,
//! then dropped. Records without a key are kept.
//!
//! Crash safety (Kafka's `.cleaned`/`.swap` idea): a segment is rewritten into
//! `<base>.log.cleaned` and fsynced, renamed to `<base>.log.swap`, the old segment's files are
//! deleted, and the swap file is renamed to `<base>.log`. At start-up a `.cleaned` file is
//! deleted (the old segment is intact) and a `.swap` file replaces the segment (the rewrite was
//! complete). Either way the log is valid.
//!
//! The heavy part (`clean`) runs without the log lock on a `CleanInput` taken under it; only the
//! file swaps (`PartitionLog::install_cleaned`) need the lock.

use crate::batch::{self, BatchHeader};
use crate::error::{IoContext, StorageError};
use crate::fs::{FileSystem, LogFile};
use crate::segment::file_stem;
use bytes::{Bytes, BytesMut};
use chronik_types::limits::RECORD_BATCH_LOG_OVERHEAD_BYTES;
use chronik_types::Offset;
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const CLEANED_SUFFIX: &str = ".log.cleaned";
pub const SWAP_SUFFIX: &str = ".log.swap";

/// What to compact: a snapshot of the log taken under its lock.
#[derive(Debug, Clone)]
pub struct CleanInput {
    pub dir: PathBuf,
    pub fs: Arc<dyn FileSystem>,
    /// Closed segments: base offset, file, size in bytes.
    pub segments: Vec<(Offset, Arc<dyn LogFile>, u64)>,
    /// The active segment up to its current end: read only to learn the newest offset of keys.
    pub head: (Arc<dyn LogFile>, u64),
    /// Offset after the last closed segment.
    pub closed_end: Offset,
    pub delete_retention_ms: i64,
    pub now_ms: i64,
    /// Aborted transactions of the log: their records never count as a key's value (and are
    /// removed), as Kafka's cleaner does.
    pub aborted: Vec<crate::txn_state::AbortedTxn>,
}

impl CleanInput {
    fn is_aborted(&self, producer_id: i64, offset: Offset) -> bool {
        producer_id >= 0
            && self.aborted.iter().any(|a| {
                a.producer_id == producer_id && a.first_offset <= offset && offset <= a.last_offset
            })
    }
}

/// A rewritten closed segment, ready to be swapped in.
#[derive(Debug, Clone)]
pub struct CleanedSegment {
    pub base_offset: Offset,
    pub cleaned_path: PathBuf,
    pub records_before: usize,
    pub records_after: usize,
}

/// Calls `f` with every whole batch of a file (up to `size`), in order.
fn for_each_batch(
    file: &dyn LogFile,
    size: u64,
    mut f: impl FnMut(Bytes, BatchHeader) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut pos = 0u64;
    let mut head = [0u8; RECORD_BATCH_LOG_OVERHEAD_BYTES];
    while pos + RECORD_BATCH_LOG_OVERHEAD_BYTES as u64 <= size {
        file.read_exact_at(&mut head, pos)
            .map_err(|e| StorageError::io("segment", e))?;
        let Some((_, len)) = batch::peek_size(&head) else {
            break;
        };
        if pos + len as u64 > size {
            break;
        }
        let mut whole = vec![0u8; len];
        file.read_exact_at(&mut whole, pos)
            .map_err(|e| StorageError::io("segment", e))?;
        let header = batch::validate(&whole)?;
        f(Bytes::from(whole), header)?;
        pos += len as u64;
    }
    Ok(())
}

fn decode(bytes: &Bytes) -> Result<kafka_protocol::records::RecordSet, StorageError> {
    RecordBatchDecoder::decode(&mut bytes.clone()).map_err(|e| StorageError::Corrupt {
        path: PathBuf::from("segment"),
        reason: format!("cannot decode record batch: {e}"),
    })
}

/// The newest offset of every key in the log.
fn key_map(input: &CleanInput) -> Result<HashMap<Bytes, Offset>, StorageError> {
    let mut map = HashMap::new();
    let files = input
        .segments
        .iter()
        .map(|(_, f, s)| (f, *s))
        .chain(std::iter::once((&input.head.0, input.head.1)));
    for (file, size) in files {
        for_each_batch(file.as_ref(), size, |bytes, h| {
            if h.is_control() {
                return Ok(());
            }
            for r in decode(&bytes)?.records {
                if input.is_aborted(r.producer_id, r.offset) {
                    continue;
                }
                if let Some(k) = r.key {
                    map.insert(k, r.offset);
                }
            }
            Ok(())
        })?;
    }
    Ok(map)
}

/// Rewrites the closed segments of `input` into `.cleaned` files (fsynced). Segments where
/// nothing would change are left out.
pub fn clean(input: &CleanInput) -> Result<Vec<CleanedSegment>, StorageError> {
    let latest = key_map(input)?;
    let mut out = Vec::new();
    for (base, file, size) in &input.segments {
        let cleaned_path = input
            .dir
            .join(format!("{}{CLEANED_SUFFIX}", file_stem(*base)));
        let mut data: Vec<u8> = Vec::new();
        let (mut before, mut after) = (0usize, 0usize);
        for_each_batch(file.as_ref(), *size, |bytes, h| {
            if h.is_control() {
                data.extend_from_slice(&bytes);
                return Ok(());
            }
            let set = decode(&bytes)?;
            before += set.records.len();
            let tombstones_expire =
                h.max_timestamp.saturating_add(input.delete_retention_ms) < input.now_ms;
            let kept: Vec<_> = set
                .records
                .iter()
                .filter(|r| match &r.key {
                    None => true,
                    Some(k) => {
                        latest.get(k) == Some(&r.offset)
                            && !(r.value.is_none() && tombstones_expire)
                    }
                })
                .cloned()
                .collect();
            after += kept.len();
            if kept.len() == set.records.len() {
                data.extend_from_slice(&bytes); // unchanged: the bytes as the producer sent them
            } else if !kept.is_empty() {
                let mut buf = BytesMut::new();
                RecordBatchEncoder::encode(
                    &mut buf,
                    kept.iter(),
                    &RecordEncodeOptions {
                        version: 2,
                        compression: set.compression,
                    },
                )
                .map_err(|e| StorageError::Corrupt {
                    path: cleaned_path.clone(),
                    reason: format!("cannot re-encode records: {e}"),
                })?;
                data.extend_from_slice(&buf);
            }
            Ok(())
        })?;
        if after == before {
            continue;
        }
        let f = input.fs.open_log(&cleaned_path, true).at(&cleaned_path)?;
        f.write_all_at(&data, 0).at(&cleaned_path)?;
        f.sync_data().at(&cleaned_path)?;
        out.push(CleanedSegment {
            base_offset: *base,
            cleaned_path,
            records_before: before,
            records_after: after,
        });
    }
    Ok(out)
}

/// Start-up: finishes or discards a compaction interrupted by a crash.
pub fn recover_interrupted(dir: &Path) -> Result<(), StorageError> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if name.ends_with(CLEANED_SUFFIX) {
            std::fs::remove_file(&path).at(&path)?;
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            let target = dir.join(format!("{stem}{}", crate::segment::LOG_SUFFIX));
            std::fs::rename(&path, &target).at(&target)?;
            tracing::warn!(segment = %target.display(), "completed a log compaction interrupted by a crash");
        }
    }
    crate::fsutil::sync_dir(dir)
}
