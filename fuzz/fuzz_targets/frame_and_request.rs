//! Arbitrary bytes as a connection's input: cut into frames by `split_frame` (with a small
//! maximum, so the too-large path is hit too) and decode every frame with `decode_request`.
//! Neither may panic or abort, whatever the bytes.
#![no_main]

use bytes::BytesMut;
use chronik_protocol::{decode_request, split_frame};
use libfuzzer_sys::fuzz_target;

/// Small enough that arbitrary inputs often exceed it, large enough for real requests.
const FRAME_BYTES_MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    // Err (negative or oversized) closes the connection; Ok(None) waits for more bytes.
    while let Ok(Some(frame)) = split_frame(&mut buf, FRAME_BYTES_MAX) {
        let _ = decode_request(frame);
    }
});
