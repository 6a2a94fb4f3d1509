//! Recovery: a scan of a segment's batches (reads only, no changes) and a pure planner that
//! turns the scans of a partition's segments into a `RecoveryPlan` the log then applies.
//!
//! Policy (Kafka's, and fjall's `TolerateCorruptTail`): the log is the longest prefix of valid,
//! offset-ordered batches. Everything after the first torn, garbage or CRC-failing batch is cut,
//! and the cut is reported with its position and offsets.

use crate::batch::{self, BatchHeader};
use crate::fs::LogFile;
use chronik_types::limits::{RECORD_BATCH_HEADER_BYTES, RECORD_BATCH_LOG_OVERHEAD_BYTES};
use chronik_types::Offset;

/// Why a scan stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanStop {
    /// Fewer bytes left than a batch header or than the batch declares (a torn write).
    TornTail { position: u64, bytes_left: u64 },
    /// A batch failed validation (CRC, magic, lengths).
    InvalidBatch { position: u64, reason: String },
    /// A batch's offsets do not follow the previous batch's.
    OffsetsOutOfOrder {
        position: u64,
        base_offset: Offset,
        expected_at_least: Offset,
    },
}

/// The result of scanning one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    pub file_bytes: u64,
    pub valid_bytes: u64,
    pub next_offset: Offset,
    pub max_timestamp: (i64, Offset),
    pub batches: Vec<(u64, BatchHeader)>,
    pub stop: Option<ScanStop>,
}

/// Scans a segment from its start. With `verify_crc`, every batch is read whole and validated;
/// otherwise only headers are read (for segments below the recovery point).
pub fn scan_segment(
    file: &dyn LogFile,
    file_bytes: u64,
    base_offset: Offset,
    verify_crc: bool,
) -> std::io::Result<SegmentScan> {
    let mut scan = SegmentScan {
        file_bytes,
        valid_bytes: 0,
        next_offset: base_offset,
        max_timestamp: (-1, base_offset),
        batches: Vec::new(),
        stop: None,
    };
    let mut pos = 0u64;
    let mut header_buf = [0u8; RECORD_BATCH_HEADER_BYTES];
    while pos < file_bytes {
        let left = file_bytes - pos;
        if left < RECORD_BATCH_HEADER_BYTES as u64 {
            scan.stop = Some(ScanStop::TornTail {
                position: pos,
                bytes_left: left,
            });
            break;
        }
        file.read_exact_at(&mut header_buf, pos)?;
        let Some(h) = BatchHeader::parse(&header_buf) else {
            scan.stop = Some(ScanStop::TornTail {
                position: pos,
                bytes_left: left,
            });
            break;
        };
        let size = h.size_bytes() as u64;
        if h.batch_length < (RECORD_BATCH_HEADER_BYTES - RECORD_BATCH_LOG_OVERHEAD_BYTES) as i32 {
            scan.stop = Some(ScanStop::InvalidBatch {
                position: pos,
                reason: format!("batch length {} too small", h.batch_length),
            });
            break;
        }
        if size > left {
            scan.stop = Some(ScanStop::TornTail {
                position: pos,
                bytes_left: left,
            });
            break;
        }
        if verify_crc {
            let mut whole = vec![0u8; usize::try_from(size).unwrap_or(0)];
            file.read_exact_at(&mut whole, pos)?;
            if let Err(e) = batch::validate(&whole) {
                scan.stop = Some(ScanStop::InvalidBatch {
                    position: pos,
                    reason: e.to_string(),
                });
                break;
            }
        } else if h.magic != batch::MAGIC_V2 {
            scan.stop = Some(ScanStop::InvalidBatch {
                position: pos,
                reason: format!("magic {}", h.magic),
            });
            break;
        }
        if h.base_offset < scan.next_offset || h.last_offset_delta < 0 {
            scan.stop = Some(ScanStop::OffsetsOutOfOrder {
                position: pos,
                base_offset: h.base_offset,
                expected_at_least: scan.next_offset,
            });
            break;
        }
        if h.max_timestamp > scan.max_timestamp.0 {
            scan.max_timestamp = (h.max_timestamp, h.last_offset());
        }
        scan.next_offset = h.next_offset();
        scan.batches.push((pos, h));
        pos += size;
        scan.valid_bytes = pos;
    }
    Ok(scan)
}

/// What recovery does to a partition's segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryPlan {
    /// Segment (by base offset) to cut to `valid_bytes`, and why.
    pub truncate: Option<(Offset, u64, ScanStop)>,
    /// Segments after the cut, removed whole.
    pub delete: Vec<Offset>,
}

/// Plans recovery from the scans of all segments in base-offset order.
/// Pure: the same scans always give the same plan.
pub fn plan(scans: &[(Offset, &SegmentScan)]) -> RecoveryPlan {
    let mut plan = RecoveryPlan::default();
    let mut next_offset: Option<Offset> = None;
    for (base, scan) in scans {
        if plan.truncate.is_some() {
            plan.delete.push(*base);
            continue;
        }
        if let Some(expected) = next_offset {
            if *base < expected {
                plan.truncate = Some((
                    *base,
                    0,
                    ScanStop::OffsetsOutOfOrder {
                        position: 0,
                        base_offset: *base,
                        expected_at_least: expected,
                    },
                ));
                continue;
            }
        }
        if let Some(stop) = &scan.stop {
            plan.truncate = Some((*base, scan.valid_bytes, stop.clone()));
        }
        next_offset = Some(scan.next_offset);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(next: Offset, stop: Option<ScanStop>) -> SegmentScan {
        SegmentScan {
            file_bytes: 100,
            valid_bytes: if stop.is_some() { 50 } else { 100 },
            next_offset: next,
            max_timestamp: (-1, 0),
            batches: vec![],
            stop,
        }
    }

    #[test]
    fn clean_segments_need_nothing() {
        let a = scan(10, None);
        let b = scan(20, None);
        assert_eq!(plan(&[(0, &a), (10, &b)]), RecoveryPlan::default());
    }

    #[test]
    fn torn_middle_segment_cuts_it_and_drops_the_rest() {
        let torn = ScanStop::TornTail {
            position: 50,
            bytes_left: 50,
        };
        let a = scan(10, Some(torn.clone()));
        let b = scan(20, None);
        let c = scan(30, None);
        let p = plan(&[(0, &a), (10, &b), (20, &c)]);
        assert_eq!(p.truncate, Some((0, 50, torn)));
        assert_eq!(p.delete, vec![10, 20]);
    }

    #[test]
    fn overlapping_segment_is_cut_whole() {
        let a = scan(10, None);
        let b = scan(20, None);
        let p = plan(&[(0, &a), (5, &b)]);
        assert_eq!(p.truncate.map(|t| (t.0, t.1)), Some((5, 0)));
    }
}
