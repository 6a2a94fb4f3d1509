//! `LogSegment`: one `.log` file of record batches starting at `base_offset`, with its
//! `.index` and `.timeindex`. File names are the base offset, zero-padded to 20 digits.

use crate::batch::{self, BatchHeader};
use crate::error::{IoContext, StorageError};
use crate::fs::{FileSystem, LogFile};
use crate::index::{
    self, parse_offset_index, parse_time_index, OffsetEntry, OffsetIndex, TimeEntry, TimeIndex,
};
use crate::recovery::{scan_segment, SegmentScan};
use chronik_types::limits::INDEX_INTERVAL_BYTES;
use chronik_types::Offset;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// File name stem of a segment: the base offset padded to 20 digits, as Kafka names them.
pub fn file_stem(base_offset: Offset) -> String {
    format!("{base_offset:020}")
}

/// What a reader needs to read a range of one segment without holding the log lock.
#[derive(Debug, Clone)]
pub struct SegmentSlice {
    pub file: Arc<dyn LogFile>,
    pub path: PathBuf,
    pub start: u64,
    pub end: u64,
}

#[derive(Debug)]
pub struct LogSegment {
    pub base_offset: Offset,
    log_path: PathBuf,
    log: Arc<dyn LogFile>,
    size_bytes: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_last_entry: u64,
    /// Offset after the last batch in this segment.
    pub next_offset: Offset,
    /// Largest batch max timestamp seen, and the last offset of that batch.
    pub max_timestamp: (i64, Offset),
    /// Wall-clock time this segment was created or opened (for `segment.ms`).
    pub created_ms: i64,
}

impl LogSegment {
    fn paths(dir: &Path, base_offset: Offset) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (
            dir.join(format!("{stem}{LOG_SUFFIX}")),
            dir.join(format!("{stem}{INDEX_SUFFIX}")),
            dir.join(format!("{stem}{TIME_INDEX_SUFFIX}")),
        )
    }

    /// Creates a new empty segment.
    pub fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        base_offset: Offset,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let log = fs.open_log(&log_path, true).at(&log_path)?;
        Ok(Self {
            base_offset,
            log_path,
            log,
            size_bytes: 0,
            offset_index: OffsetIndex::create(&index_path, Vec::new(), |e| e.to_bytes().to_vec())?,
            time_index: TimeIndex::create(&time_path, Vec::new(), |e| e.to_bytes().to_vec())?,
            bytes_since_last_entry: 0,
            next_offset: base_offset,
            max_timestamp: (-1, base_offset),
            created_ms: now_ms,
        })
    }

    /// Opens an existing segment. With `full_scan` every batch is CRC-checked and the valid
    /// prefix is returned for the recovery planner; otherwise only the index is sanity-checked
    /// (and rebuilt from batch headers if it looks wrong).
    pub fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        base_offset: Offset,
        full_scan: bool,
        now_ms: i64,
    ) -> Result<(Self, SegmentScan), StorageError> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let log = fs.open_log(&log_path, false).at(&log_path)?;
        let file_bytes = log.size_bytes().at(&log_path)?;
        let scan = scan_segment(log.as_ref(), file_bytes, base_offset, full_scan).at(&log_path)?;
        // Keep the stored indexes when they are well-formed and match the valid prefix; else rebuild.
        let stored_index =
            OffsetIndex::open(&index_path, |b| parse_offset_index(b, scan.valid_bytes))?;
        let stored_time = TimeIndex::open(&time_path, parse_time_index)?;
        let (offsets, times, since) = index_entries_for(base_offset, &scan.batches);
        let (offset_index, time_index) = match (stored_index, stored_time) {
            (Some(oi), Some(ti)) if oi.entries == offsets && ti.entries == times => (oi, ti),
            _ => (
                OffsetIndex::create(&index_path, offsets, |e| e.to_bytes().to_vec())?,
                TimeIndex::create(&time_path, times, |e| e.to_bytes().to_vec())?,
            ),
        };
        let segment = Self {
            base_offset,
            log_path,
            log,
            size_bytes: scan.valid_bytes,
            offset_index,
            time_index,
            bytes_since_last_entry: since,
            next_offset: scan.next_offset,
            max_timestamp: scan.max_timestamp,
            created_ms: now_ms,
        };
        Ok((segment, scan))
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub fn log_file(&self) -> &Arc<dyn LogFile> {
        &self.log
    }
    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    /// Appends already validated batches (base offsets assigned). `headers` describe them.
    pub fn append(
        &mut self,
        bytes: &[u8],
        headers: &[(usize, BatchHeader)],
    ) -> Result<(), StorageError> {
        if let Err(e) = self.log.write_all_at(bytes, self.size_bytes) {
            // A full disk: cut off whatever part of the write landed, so nothing partial is
            // ever read; the segment stays usable once space returns.
            if e.kind() == std::io::ErrorKind::StorageFull
                && self.log.set_len(self.size_bytes).is_ok()
            {
                return Err(StorageError::DiskFull(self.log_path.clone()));
            }
            return Err(StorageError::io(&self.log_path, e));
        }
        for (pos, h) in headers {
            let rel = relative(h.base_offset, self.base_offset);
            let position = self.size_bytes + *pos as u64;
            if self.offset_index.entries.is_empty()
                || self.bytes_since_last_entry >= INDEX_INTERVAL_BYTES
            {
                let e = OffsetEntry {
                    relative_offset: rel,
                    position: u32::try_from(position).unwrap_or(u32::MAX),
                };
                self.offset_index.append(e, &e.to_bytes())?;
                self.bytes_since_last_entry = 0;
            }
            self.bytes_since_last_entry += h.size_bytes() as u64;
            if h.max_timestamp > self.max_timestamp.0 {
                self.max_timestamp = (h.max_timestamp, h.last_offset());
            }
            if self
                .time_index
                .entries
                .last()
                .is_none_or(|t| h.max_timestamp > t.timestamp)
            {
                let e = TimeEntry {
                    timestamp: h.max_timestamp,
                    relative_offset: rel,
                };
                self.time_index.append(e, &e.to_bytes())?;
            }
            self.next_offset = h.next_offset();
        }
        self.size_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Byte position from which to scan for the batch holding `offset`.
    pub fn scan_start(&self, offset: Offset) -> u64 {
        u64::from(index::lookup_position(
            &self.offset_index.entries,
            relative(offset, self.base_offset),
        ))
    }

    /// Byte position from which to scan for the first batch with a timestamp ≥ `timestamp`.
    pub fn time_scan_start(&self, timestamp: i64) -> u64 {
        index::lookup_time(&self.time_index.entries, timestamp).map_or(0, |rel| {
            u64::from(index::lookup_position(&self.offset_index.entries, rel))
        })
    }

    pub fn slice(&self, start: u64) -> SegmentSlice {
        SegmentSlice {
            file: Arc::clone(&self.log),
            path: self.log_path.clone(),
            start,
            end: self.size_bytes,
        }
    }

    /// Reads batch headers from `start` and returns the position of the batch holding `offset`.
    pub fn find_position(
        &self,
        offset: Offset,
    ) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        let mut pos = self.scan_start(offset);
        while pos < self.size_bytes {
            let h = self.header_at(pos)?;
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.size_bytes() as u64;
        }
        Ok(None)
    }

    /// Reads the batch header at `pos`.
    pub fn header_at(&self, pos: u64) -> Result<BatchHeader, StorageError> {
        let mut buf = [0u8; chronik_types::limits::RECORD_BATCH_HEADER_BYTES];
        self.log.read_exact_at(&mut buf, pos).at(&self.log_path)?;
        BatchHeader::parse(&buf).ok_or_else(|| StorageError::Corrupt {
            path: self.log_path.clone(),
            reason: format!("unreadable batch header at position {pos}"),
        })
    }

    /// First batch whose max timestamp is ≥ `timestamp`.
    pub fn find_by_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        let mut pos = self.time_scan_start(timestamp);
        while pos < self.size_bytes {
            let h = self.header_at(pos)?;
            if h.max_timestamp >= timestamp {
                return Ok(Some((pos, h)));
            }
            pos += h.size_bytes() as u64;
        }
        Ok(None)
    }

    /// Flushes the log file's data to disk (fdatasync).
    pub fn sync(&self) -> Result<(), StorageError> {
        self.log.sync_data().at(&self.log_path)
    }

    /// Flushes the indexes too (at roll and shutdown; they are otherwise rebuilt by recovery).
    pub fn sync_all(&self) -> Result<(), StorageError> {
        self.sync()?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Deletes the segment's files.
    pub fn delete(self) -> Result<(), StorageError> {
        for p in [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(p, e)),
            }
        }
        Ok(())
    }
}

/// The index entries the batches of a segment produce, and bytes since the last offset entry.
pub(crate) fn index_entries_for(
    base_offset: Offset,
    batches: &[(u64, BatchHeader)],
) -> (Vec<OffsetEntry>, Vec<TimeEntry>, u64) {
    let mut offsets = Vec::new();
    let mut times: Vec<TimeEntry> = Vec::new();
    let mut since = 0u64;
    for (pos, h) in batches {
        let rel = relative(h.base_offset, base_offset);
        if offsets.is_empty() || since >= INDEX_INTERVAL_BYTES {
            offsets.push(OffsetEntry {
                relative_offset: rel,
                position: u32::try_from(*pos).unwrap_or(u32::MAX),
            });
            since = 0;
        }
        since += h.size_bytes() as u64;
        if times.last().is_none_or(|t| h.max_timestamp > t.timestamp) {
            times.push(TimeEntry {
                timestamp: h.max_timestamp,
                relative_offset: rel,
            });
        }
    }
    (offsets, times, since)
}

fn relative(offset: Offset, base: Offset) -> u32 {
    u32::try_from(offset.saturating_sub(base)).unwrap_or(u32::MAX)
}

/// Reads `[start, end)` of a segment file.
pub fn read_slice(slice: &SegmentSlice, max_bytes: u64) -> Result<Vec<u8>, StorageError> {
    let len = slice.end.saturating_sub(slice.start).min(max_bytes);
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    slice
        .file
        .read_exact_at(&mut buf, slice.start)
        .at(&slice.path)?;
    Ok(buf)
}

/// Re-exported so recovery can validate a whole batch read from disk.
pub use batch::validate as validate_batch;
