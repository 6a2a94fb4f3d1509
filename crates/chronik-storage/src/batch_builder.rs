//! Builds uncompressed record batches (magic v2) the way a producer would: for tests, the
//! replication simulator and tools, and for the broker's own records (transaction markers,
//! `control`).

use crate::batch;
use chronik_types::limits::{RECORD_BATCH_HEADER_BYTES, RECORD_BATCH_LOG_OVERHEAD_BYTES};

/// A batch of `count` records, each with a null key and `value`, all at `timestamp`,
/// base offset 0 and no producer id.
pub fn uncompressed_batch(count: i32, timestamp: i64, value: &[u8]) -> Vec<u8> {
    producer_batch(Producer::NONE, count, timestamp, value)
}

/// Who wrote a batch: an idempotent producer's id, epoch and first sequence, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

impl Producer {
    pub const NONE: Self = Self {
        id: -1,
        epoch: -1,
        base_sequence: -1,
    };
}

/// `uncompressed_batch` written by `producer`.
pub fn producer_batch(producer: Producer, count: i32, timestamp: i64, value: &[u8]) -> Vec<u8> {
    let records: Vec<KeyValue> = (0..count.max(1)).map(|_| (None, Some(value))).collect();
    build(0, producer, &records, timestamp)
}

/// An uncompressed batch with `attributes` (transactional, control bits), written by
/// `producer`, holding `records` as (key, value) pairs, all at `timestamp`, base offset 0.
pub fn build(attributes: i16, producer: Producer, records: &[KeyValue], timestamp: i64) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut rec = vec![0u8]; // attributes
        put_varint(&mut rec, 0); // timestamp delta
        put_varint(&mut rec, i64::try_from(i).unwrap_or(0)); // offset delta
        put_bytes(&mut rec, *key);
        put_bytes(&mut rec, *value);
        put_varint(&mut rec, 0); // headers
        put_varint(&mut body, i64::try_from(rec.len()).unwrap_or(0));
        body.extend_from_slice(&rec);
    }
    let count = i32::try_from(records.len()).unwrap_or(i32::MAX);
    let mut b = Vec::with_capacity(RECORD_BATCH_HEADER_BYTES + body.len());
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    let batch_length = RECORD_BATCH_HEADER_BYTES - RECORD_BATCH_LOG_OVERHEAD_BYTES + body.len();
    b.extend_from_slice(
        &i32::try_from(batch_length)
            .unwrap_or(i32::MAX)
            .to_be_bytes(),
    );
    b.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes()); // last offset delta
    b.extend_from_slice(&timestamp.to_be_bytes()); // base timestamp
    b.extend_from_slice(&timestamp.to_be_bytes()); // max timestamp
    b.extend_from_slice(&producer.id.to_be_bytes());
    b.extend_from_slice(&producer.epoch.to_be_bytes());
    b.extend_from_slice(&producer.base_sequence.to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&body);
    if let Some(crc) = batch::compute_crc(&b) {
        if let Some(slot) = b.get_mut(17..21) {
            slot.copy_from_slice(&crc.to_be_bytes());
        }
    }
    b
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(v) => {
            put_varint(out, i64::try_from(v.len()).unwrap_or(0));
            out.extend_from_slice(v);
        }
        None => put_varint(out, -1),
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// The values of the records of an uncompressed batch (as built by `uncompressed_batch`), in
/// order; `None` if the batch is compressed or its records do not parse.
pub fn record_values(batch_bytes: &[u8]) -> Option<Vec<&[u8]>> {
    Some(
        records(batch_bytes)?
            .into_iter()
            .map(|(_, v)| v.unwrap_or_default())
            .collect(),
    )
}

/// The (key, value) pairs of the records of an uncompressed batch, in order; `None` if the
/// batch is compressed or its records do not parse.
pub fn records(batch_bytes: &[u8]) -> Option<Vec<KeyValue<'_>>> {
    let h = batch::BatchHeader::parse(batch_bytes)?;
    if h.compression_codec() != 0 {
        return None;
    }
    let mut pos = RECORD_BATCH_HEADER_BYTES;
    let end = h.size_bytes().min(batch_bytes.len());
    let mut out = Vec::new();
    for _ in 0..h.records_count {
        let (len, n) = get_varint(batch_bytes.get(pos..end)?)?;
        pos += n;
        let rec_end = pos.checked_add(usize::try_from(len).ok()?)?;
        let rec = batch_bytes.get(pos..rec_end)?;
        let mut p = 1; // attributes
        let (_, n) = get_varint(rec.get(p..)?)?; // timestamp delta
        p += n;
        let (_, n) = get_varint(rec.get(p..)?)?; // offset delta
        p += n;
        let (key, n) = get_bytes(rec.get(p..)?)?;
        p += n;
        let (value, _) = get_bytes(rec.get(p..)?)?;
        out.push((key, value));
        pos = rec_end;
    }
    Some(out)
}

/// A record's key and value (either may be null).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A varint-length-prefixed nullable byte string: the bytes and how many bytes it took.
fn get_bytes(buf: &[u8]) -> Option<(Option<&[u8]>, usize)> {
    let (len, n) = get_varint(buf)?;
    if len < 0 {
        return Some((None, n));
    }
    let end = n.checked_add(usize::try_from(len).ok()?)?;
    Some((Some(buf.get(n..end)?), end))
}

pub(crate) fn get_varint(buf: &[u8]) -> Option<(i64, usize)> {
    let mut z: u64 = 0;
    for (i, b) in buf.iter().enumerate().take(10) {
        z |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((((z >> 1) as i64) ^ -((z & 1) as i64), i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batches_validate_and_their_values_read_back() {
        let b = uncompressed_batch(3, 1_000, b"hello");
        let h = batch::validate(&b).map_err(|e| e.to_string());
        assert_eq!(h.map(|h| h.records_count), Ok(3));
        assert_eq!(record_values(&b), Some(vec![&b"hello"[..]; 3]));
        let long = vec![7u8; 300]; // a value length needing a two-byte varint
        let b = uncompressed_batch(1, 1_000, &long);
        assert_eq!(record_values(&b), Some(vec![&long[..]]));
    }
}
