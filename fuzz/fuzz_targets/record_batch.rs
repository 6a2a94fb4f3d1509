//! Arbitrary bytes as produce data or a log tail: split into record batches and validated, and
//! the fixed header parsed. Neither may panic, whatever the bytes.
//!
//! Random bytes almost never carry a right CRC-32C, so the same bytes are tried a second time with
//! the CRC of every batch made right: that reaches the checks after the CRC, and the rewrites a
//! broker does on a valid batch (base offset, LogAppendTime), which must keep it valid.
#![no_main]

use chronik_storage::batch::{
    compute_crc, peek_size, set_base_offset, set_log_append_time, split_and_validate, validate,
    BatchHeader,
};
use libfuzzer_sys::fuzz_target;

/// Where the CRC sits in a batch (see chronik_storage::batch).
const CRC_AT: std::ops::Range<usize> = 17..21;

fn check(data: &[u8]) {
    let _ = BatchHeader::parse(data);
    let Ok(batches) = split_and_validate(data) else {
        return;
    };
    for (pos, header) in batches {
        // Every batch found lies inside the input and starts with the header it reports.
        let end = pos + header.size_bytes();
        let batch = data.get(pos..end).expect("batch inside the input");
        assert_eq!(BatchHeader::parse(batch), Some(header));
        // The broker's rewrites keep a valid batch valid.
        let mut copy = batch.to_vec();
        set_base_offset(&mut copy, 42).expect("whole header");
        set_log_append_time(&mut copy, 1_700_000_000_000).expect("whole header");
        let rewritten = validate(&copy).expect("rewritten batch still valid");
        assert_eq!(rewritten.base_offset, 42);
        assert_eq!(rewritten.max_timestamp, 1_700_000_000_000);
        assert!(rewritten.is_log_append_time());
        assert_eq!(rewritten.records_count, header.records_count);
    }
}

fn with_right_crcs(data: &[u8]) -> Vec<u8> {
    let mut fixed = data.to_vec();
    let mut pos = 0usize;
    while let Some((_, size)) = fixed.get(pos..).and_then(peek_size) {
        let Some(batch) = fixed.get_mut(pos..pos.saturating_add(size)) else {
            break;
        };
        if let Some(crc) = compute_crc(batch) {
            if let Some(slot) = batch.get_mut(CRC_AT) {
                slot.copy_from_slice(&crc.to_be_bytes());
            }
        }
        pos += size;
    }
    fixed
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&with_right_crcs(data));
});
