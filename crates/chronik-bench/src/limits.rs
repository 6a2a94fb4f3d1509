//! The machine's limits, measured in the same run as the workloads: sequential write +
//! fdatasync on the data dir's disk (what Chronik's group commit does) and loopback TCP.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::report::{new_histogram, LatencySummary};
use crate::sys::round;

/// Chunk sizes for the disk test: the range of batch sizes Chronik appends and fdatasyncs
/// (a client batch of 1 KiB values is 16 KiB-1 MB; one fdatasync may cover several).
pub const DISK_CHUNKS: [usize; 4] = [16 << 10, 64 << 10, 256 << 10, 1 << 20];

const MB: f64 = 1e6;

#[derive(Clone, Debug, Serialize)]
pub struct DiskResult {
    pub chunk_bytes: usize,
    pub seconds: f64,
    pub syncs: u64,
    /// Bytes written / (write + fdatasync time), MB = 10^6 bytes.
    pub mb_per_s: f64,
    pub fdatasync: LatencySummary,
}

/// Fills `buf` with pseudo-random bytes (xorshift64*), so that nothing on the way can compress
/// it.
pub fn fill_random(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// For each chunk size: append chunks to a new file in `dir`, each followed by fdatasync, for
/// `seconds`; then delete the file.
pub fn measure_disk(dir: &Path, seconds: f64, label: &str) -> Result<Vec<DiskResult>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut out = Vec::new();
    for chunk in DISK_CHUNKS {
        let path = dir.join(format!(
            "chronik-bench-disk-{}-{chunk}.tmp",
            std::process::id()
        ));
        let mut buf = vec![0u8; chunk];
        fill_random(&mut buf, chunk as u64 ^ 0x9e37_79b9_7f4a_7c15);
        let mut hist: Histogram<u64> = new_histogram();
        let result = (|| -> Result<(u64, f64)> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let start = Instant::now();
            let limit = Duration::from_secs_f64(seconds);
            let mut syncs = 0u64;
            loop {
                f.write_all(&buf)?;
                let t0 = Instant::now();
                f.sync_data()?; // fdatasync(2) on Linux
                let now = Instant::now();
                hist.saturating_record((now - t0).as_micros().max(1) as u64);
                syncs += 1;
                if now - start >= limit {
                    return Ok((syncs, (now - start).as_secs_f64()));
                }
            }
        })();
        let _ = fs::remove_file(&path);
        let (syncs, elapsed) = result?;
        let r = DiskResult {
            chunk_bytes: chunk,
            seconds: round(elapsed, 3),
            syncs,
            mb_per_s: round(syncs as f64 * chunk as f64 / elapsed / MB, 1),
            fdatasync: LatencySummary::from_micros(&hist),
        };
        eprintln!(
            "  {label} {:>5} KiB: {:8.1} MB/s  fdatasync p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms ({} syncs)",
            chunk >> 10,
            r.mb_per_s,
            r.fdatasync.p50_ms,
            r.fdatasync.p99_ms,
            r.fdatasync.max_ms,
            r.syncs
        );
        out.push(r);
    }
    Ok(out)
}

#[derive(Clone, Debug, Serialize)]
pub struct LoopbackResult {
    pub seconds: f64,
    pub bytes: u64,
    pub write_bytes: usize,
    /// One TCP stream over 127.0.0.1, sender and receiver threads in this process.
    pub mb_per_s: f64,
}

/// One TCP stream over 127.0.0.1 for `seconds`: a sender thread writes 256 KiB buffers, a
/// receiver thread reads them; MB/s as received.
pub fn measure_loopback(seconds: f64) -> Result<LoopbackResult> {
    const WRITE: usize = 256 << 10;
    let listener = TcpListener::bind("127.0.0.1:0").context("loopback test: cannot bind")?;
    let addr = listener.local_addr()?;
    let receiver = thread::Builder::new().name("loopback-rx".into()).spawn(
        move || -> Result<(u64, Instant)> {
            let (mut s, _) = listener.accept()?;
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            let mut last = Instant::now();
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    return Ok((total, last));
                }
                total += n as u64;
                last = Instant::now();
            }
        },
    )?;
    let mut s = TcpStream::connect(addr).context("loopback test: cannot connect")?;
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; WRITE];
    fill_random(&mut buf, 42);
    let start = Instant::now();
    let limit = Duration::from_secs_f64(seconds);
    while start.elapsed() < limit {
        s.write_all(&buf)?;
    }
    s.shutdown(Shutdown::Write)?;
    let (bytes, last) = match receiver.join() {
        Ok(r) => r?,
        Err(_) => bail!("loopback receiver thread panicked"),
    };
    let elapsed = last.duration_since(start).as_secs_f64().max(1e-9);
    let r = LoopbackResult {
        seconds: round(elapsed, 3),
        bytes,
        write_bytes: WRITE,
        mb_per_s: round(bytes as f64 / elapsed / MB, 1),
    };
    eprintln!(
        "  loopback TCP: {:.1} MB/s ({} bytes in {:.2} s, one stream)",
        r.mb_per_s, r.bytes, r.seconds
    );
    Ok(r)
}
