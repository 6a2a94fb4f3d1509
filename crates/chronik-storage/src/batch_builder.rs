//! Builds uncompressed record batches (magic v2) the way a producer would: for tests, the
//! replication simulator and tools. The broker itself never builds batches.

use crate::batch;
use chronik_types::limits::{RECORD_BATCH_HEADER_BYTES, RECORD_BATCH_LOG_OVERHEAD_BYTES};

/// A batch of `count` records, each with a null key and `value`, all at `timestamp`,
/// base offset 0 and no producer id.
pub fn uncompressed_batch(count: i32, timestamp: i64, value: &[u8]) -> Vec<u8> {
    let mut records = Vec::new();
    for i in 0..count.max(1) {
        let mut rec = vec![0u8]; // attributes
        put_varint(&mut rec, 0); // timestamp delta
        put_varint(&mut rec, i64::from(i)); // offset delta
        put_varint(&mut rec, -1); // key length (null)
        put_varint(&mut rec, i64::try_from(value.len()).unwrap_or(0));
        rec.extend_from_slice(value);
        put_varint(&mut rec, 0); // headers
        put_varint(&mut records, i64::try_from(rec.len()).unwrap_or(0));
        records.extend_from_slice(&rec);
    }
    let count = count.max(1);
    let mut b = Vec::with_capacity(RECORD_BATCH_HEADER_BYTES + records.len());
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    let batch_length = RECORD_BATCH_HEADER_BYTES - RECORD_BATCH_LOG_OVERHEAD_BYTES + records.len();
    b.extend_from_slice(
        &i32::try_from(batch_length)
            .unwrap_or(i32::MAX)
            .to_be_bytes(),
    );
    b.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&(count - 1).to_be_bytes()); // last offset delta
    b.extend_from_slice(&timestamp.to_be_bytes()); // base timestamp
    b.extend_from_slice(&timestamp.to_be_bytes()); // max timestamp
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&records);
    if let Some(crc) = batch::compute_crc(&b) {
        if let Some(slot) = b.get_mut(17..21) {
            slot.copy_from_slice(&crc.to_be_bytes());
        }
    }
    b
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}
