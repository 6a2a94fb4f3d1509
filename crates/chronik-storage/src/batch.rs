//! Record batches (magic v2) as stored on disk and sent on the wire.
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset            (rewritten on append; outside the CRC)
//!      8     4  batch_length           (bytes after this field)
//!     12     4  partition_leader_epoch (outside the CRC)
//!     16     1  magic = 2
//!     17     4  crc (CRC-32C of bytes 21..end)
//!     21     2  attributes             (bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control)
//!     23     4  last_offset_delta
//!     27     8  base_timestamp
//!     35     8  max_timestamp
//!     43     8  producer_id
//!     51     2  producer_epoch
//!     53     4  base_sequence
//!     57     4  records_count
//!     61     …  records
//! ```

use crate::error::BatchError;
use chronik_types::limits::{RECORD_BATCH_HEADER_BYTES, RECORD_BATCH_LOG_OVERHEAD_BYTES};
use chronik_types::Offset;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;
const COMPRESSION_MASK: i16 = 0x07;

/// Magic byte of the only record batch format Chronik accepts.
pub const MAGIC_V2: i8 = 2;

/// The fixed-size header of one record batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: Offset,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn read_i64(buf: &[u8], at: usize) -> Option<i64> {
    buf.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(i64::from_be_bytes)
}
fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    buf.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(i32::from_be_bytes)
}
fn read_i16(buf: &[u8], at: usize) -> Option<i16> {
    buf.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(i16::from_be_bytes)
}
fn write_bytes(buf: &mut [u8], at: usize, bytes: &[u8]) -> Option<()> {
    buf.get_mut(at..at + bytes.len())?.copy_from_slice(bytes);
    Some(())
}

/// Reads `base_offset` and `batch_length` — the 12 bytes needed to step to the next batch.
/// Returns the total size of the batch in bytes, or `None` if `buf` is shorter than 12 bytes.
pub fn peek_size(buf: &[u8]) -> Option<(Offset, usize)> {
    let base = read_i64(buf, BASE_OFFSET_AT)?;
    let len = read_i32(buf, BATCH_LENGTH_AT)?;
    let len = usize::try_from(len).ok()?;
    Some((base, len + RECORD_BATCH_LOG_OVERHEAD_BYTES))
}

impl BatchHeader {
    /// Decodes the header at the start of `buf`; `None` if `buf` is shorter than a header.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        if buf.len() < RECORD_BATCH_HEADER_BYTES {
            return None;
        }
        Some(Self {
            base_offset: read_i64(buf, BASE_OFFSET_AT)?,
            batch_length: read_i32(buf, BATCH_LENGTH_AT)?,
            partition_leader_epoch: read_i32(buf, LEADER_EPOCH_AT)?,
            magic: *buf.get(MAGIC_AT)? as i8,
            crc: read_i32(buf, CRC_AT)? as u32,
            attributes: read_i16(buf, ATTRIBUTES_AT)?,
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_AT)?,
            base_timestamp: read_i64(buf, BASE_TIMESTAMP_AT)?,
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_AT)?,
            producer_id: read_i64(buf, PRODUCER_ID_AT)?,
            producer_epoch: read_i16(buf, PRODUCER_EPOCH_AT)?,
            base_sequence: read_i32(buf, BASE_SEQUENCE_AT)?,
            records_count: read_i32(buf, RECORDS_COUNT_AT)?,
        })
    }

    /// Total bytes of the batch including the 12-byte log overhead.
    pub fn size_bytes(&self) -> usize {
        usize::try_from(self.batch_length).unwrap_or(0) + RECORD_BATCH_LOG_OVERHEAD_BYTES
    }
    pub fn last_offset(&self) -> Offset {
        self.base_offset + Offset::from(self.last_offset_delta)
    }
    pub fn next_offset(&self) -> Offset {
        self.last_offset() + 1
    }
    pub fn compression_codec(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// CRC-32C over the part of the batch the CRC covers (attributes to the end).
pub fn compute_crc(batch: &[u8]) -> Option<u32> {
    batch.get(ATTRIBUTES_AT..).map(crc32c::crc32c)
}

/// Checks one whole batch (exactly `batch.len()` bytes): framing, magic, CRC, record count.
/// This is the check used both for incoming produce data and for recovery.
pub fn validate(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch).ok_or(BatchError::Truncated)?;
    if header.batch_length < 0 || header.size_bytes() != batch.len() {
        return Err(BatchError::LengthMismatch {
            declared: header.size_bytes(),
            actual: batch.len(),
        });
    }
    if header.magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic(header.magic));
    }
    let crc = compute_crc(batch).ok_or(BatchError::Truncated)?;
    if crc != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed: crc,
        });
    }
    if header.records_count < 0 || header.last_offset_delta < 0 {
        return Err(BatchError::InvalidRecordCount);
    }
    Ok(header)
}

/// Splits a buffer of concatenated batches into whole batches, validating each.
pub fn split_and_validate(buf: &[u8]) -> Result<Vec<(usize, BatchHeader)>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = buf.get(pos..).ok_or(BatchError::Truncated)?;
        let (_, size) = peek_size(rest).ok_or(BatchError::Truncated)?;
        let one = rest.get(..size).ok_or(BatchError::Truncated)?;
        let header = validate(one)?;
        out.push((pos, header));
        pos += size;
    }
    Ok(out)
}

/// Rewrites `base_offset` (outside the CRC, so the CRC stays valid).
pub fn set_base_offset(batch: &mut [u8], base_offset: Offset) -> Option<()> {
    write_bytes(batch, BASE_OFFSET_AT, &base_offset.to_be_bytes())
}

/// Rewrites `partition_leader_epoch` (outside the CRC): the Raft term that appended the batch.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Option<()> {
    write_bytes(batch, LEADER_EPOCH_AT, &epoch.to_be_bytes())
}

/// Marks the batch LogAppendTime with `now_ms` as its max timestamp and recomputes the CRC.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) -> Option<()> {
    let attributes = read_i16(batch, ATTRIBUTES_AT)? | TIMESTAMP_TYPE_BIT;
    write_bytes(batch, ATTRIBUTES_AT, &attributes.to_be_bytes())?;
    write_bytes(batch, MAX_TIMESTAMP_AT, &now_ms.to_be_bytes())?;
    let crc = compute_crc(batch)?;
    write_bytes(batch, CRC_AT, &crc.to_be_bytes())
}

/// The indexes (0 = the batch's first record) of the records of a whole batch that have no key
/// (compacted topics refuse them). Decompresses the batch if it is compressed.
pub fn keyless_record_indexes(batch: &[u8]) -> Result<Vec<i32>, BatchError> {
    let mut bytes = bytes::Bytes::copy_from_slice(batch);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
        .map_err(|_| BatchError::InvalidRecordCount)?;
    Ok(set
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.key.is_none())
        .map(|(i, _)| i32::try_from(i).unwrap_or(i32::MAX))
        .collect())
}

/// Reads a zig-zag varint (Kafka's record fields) at `*pos`, advancing it.
fn read_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

/// The first record of a whole batch with a timestamp at or after `timestamp`, as
/// `(timestamp, offset)`. Records of uncompressed CreateTime batches are read one by one; for a
/// compressed or LogAppendTime batch the batch's max timestamp and base offset stand for it.
pub fn first_record_at_or_after(batch: &[u8], timestamp: i64) -> Option<(i64, Offset)> {
    let h = BatchHeader::parse(batch)?;
    if h.compression_codec() != 0 || h.is_log_append_time() {
        return (h.max_timestamp >= timestamp).then_some((h.max_timestamp, h.base_offset));
    }
    let mut pos = RECORD_BATCH_HEADER_BYTES;
    for _ in 0..h.records_count {
        let length = usize::try_from(read_varlong(batch, &mut pos)?).ok()?;
        let next = pos + length;
        pos += 1; // attributes
        let ts_delta = read_varlong(batch, &mut pos)?;
        let offset_delta = read_varlong(batch, &mut pos)?;
        let ts = h.base_timestamp.checked_add(ts_delta)?;
        if ts >= timestamp {
            return Some((ts, h.base_offset + offset_delta));
        }
        pos = next;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a valid uncompressed batch holding `count` records with `value` each.
    pub fn make_batch(base_offset: Offset, count: i32, timestamp: i64, value: &[u8]) -> Vec<u8> {
        let mut b = crate::batch_builder::uncompressed_batch(count, timestamp, value);
        set_base_offset(&mut b, base_offset);
        b
    }

    #[test]
    fn valid_batch_passes_and_reports_offsets() {
        let b = make_batch(0, 3, 1000, b"abc");
        let h = validate(&b).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.size_bytes(), b.len());
    }

    #[test]
    fn flipped_byte_is_a_crc_mismatch() {
        let mut b = make_batch(0, 3, 1000, b"abc");
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(matches!(validate(&b), Err(BatchError::CrcMismatch { .. })));
    }

    #[test]
    fn base_offset_rewrite_keeps_crc_valid() {
        let mut b = make_batch(0, 2, 1000, b"x");
        set_base_offset(&mut b, 42).unwrap();
        let h = validate(&b).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.next_offset(), 44);
    }

    #[test]
    fn log_append_time_rewrite_recomputes_crc() {
        let mut b = make_batch(0, 2, 1000, b"x");
        set_log_append_time(&mut b, 5000).unwrap();
        let h = validate(&b).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 5000);
    }

    #[test]
    fn finds_the_first_record_at_or_after_a_timestamp() {
        // make_batch gives every record the same timestamp; vary them by hand.
        let b = make_batch(10, 3, 1000, b"v");
        assert_eq!(first_record_at_or_after(&b, 999), Some((1000, 10)));
        assert_eq!(first_record_at_or_after(&b, 1001), None);
        let mut b = make_batch(10, 3, 1000, b"v");
        // record i starts after: header (61) + i * record_len; record layout: len, attrs, ts_delta.
        let record_len = (b.len() - RECORD_BATCH_HEADER_BYTES) / 3;
        for i in 0..3 {
            b[RECORD_BATCH_HEADER_BYTES + i * record_len + 2] = (i as u8 * 5) << 1;
            // ts delta 0, 5, 10
        }
        assert_eq!(first_record_at_or_after(&b, 1003), Some((1005, 11)));
        assert_eq!(first_record_at_or_after(&b, 1010), Some((1010, 12)));
    }

    #[test]
    fn truncated_batch_is_rejected() {
        let b = make_batch(0, 2, 1000, b"x");
        assert!(validate(&b[..b.len() - 1]).is_err());
        assert!(split_and_validate(&b[..30]).is_err());
    }
}
