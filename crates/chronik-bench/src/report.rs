//! Latency summaries, the ratios to the machine's limits, the tables and the JSON report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::limits::{DiskResult, LoopbackResult};
use crate::sys::{round, Machine, Mount};
use crate::workload::RunResult;

/// Histogram of microseconds, 1 µs to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)] // constant bounds that HdrHistogram accepts
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    pub fn from_micros(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| round(us as f64 / 1e3, 3);
        LatencySummary {
            count: h.len(),
            mean_ms: round(h.mean() / 1e3, 3),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// A run's produce throughput against the disk limit.
#[derive(Clone, Debug, Serialize)]
pub struct DiskRatio {
    /// What the chunk size was matched to: the server's produce bytes per fdatasync, else its
    /// average Produce request, else the client's average batch.
    pub basis: String,
    pub basis_bytes: Option<f64>,
    pub chunk_bytes: usize,
    /// The disk limit at that chunk size: the better of the measurements at the start and at
    /// the end of the run (other I/O on a shared disk can only lower a measurement).
    pub disk_mb_per_s: f64,
    pub disk_start_mb_per_s: f64,
    pub disk_end_mb_per_s: Option<f64>,
    /// The lower of the two fdatasync p99s at that chunk size.
    pub fdatasync_p99_ms: f64,
    pub ratio: f64,
    pub best_disk_mb_per_s: f64,
    pub ratio_to_best: f64,
}

/// The disk result whose chunk size is closest (log scale) to `bytes`; the largest chunk when
/// nothing is known.
pub fn closest_chunk(disk: &[DiskResult], bytes: Option<f64>) -> Option<&DiskResult> {
    match bytes.filter(|b| *b > 0.0) {
        None => disk.last(),
        Some(b) => disk.iter().min_by(|x, y| {
            let dx = (x.chunk_bytes as f64 / b).ln().abs();
            let dy = (y.chunk_bytes as f64 / b).ln().abs();
            dx.total_cmp(&dy)
        }),
    }
}

/// The bytes one fdatasync covers in this run, and where that figure comes from.
pub fn sync_basis(run: &RunResult) -> (String, Option<f64>) {
    let s = run.server.as_ref();
    if let Some(b) = s.and_then(|s| s.produce_bytes_per_fsync) {
        return ("server produce bytes per fdatasync".into(), Some(b));
    }
    if let Some(b) = s.and_then(|s| s.avg_produce_request_bytes) {
        return ("server average Produce request".into(), Some(b));
    }
    if let Some(b) = run.produce.client_avg_batch_bytes {
        return ("client average batch".into(), Some(b));
    }
    ("none (largest chunk)".into(), None)
}

pub fn disk_ratio(run: &RunResult, lim: &Limits) -> Option<DiskRatio> {
    let (basis, bytes) = sync_basis(run);
    let chunk = closest_chunk(&lim.disk, bytes)?;
    let end = lim
        .disk_after
        .iter()
        .find(|a| a.chunk_bytes == chunk.chunk_bytes);
    let limit = end.map_or(chunk.mb_per_s, |e| e.mb_per_s.max(chunk.mb_per_s));
    let p99 = end.map_or(chunk.fdatasync.p99_ms, |e| {
        e.fdatasync.p99_ms.min(chunk.fdatasync.p99_ms)
    });
    let best = lim
        .disk
        .iter()
        .chain(&lim.disk_after)
        .map(|d| d.mb_per_s)
        .fold(0.0, f64::max);
    Some(DiskRatio {
        basis,
        basis_bytes: bytes,
        chunk_bytes: chunk.chunk_bytes,
        disk_mb_per_s: limit,
        disk_start_mb_per_s: chunk.mb_per_s,
        disk_end_mb_per_s: end.map(|e| e.mb_per_s),
        fdatasync_p99_ms: p99,
        ratio: round(run.produce.mb_per_s / limit.max(1e-9), 3),
        best_disk_mb_per_s: best,
        ratio_to_best: round(run.produce.mb_per_s / best.max(1e-9), 3),
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    pub name: String,
    pub value: f64,
    pub how: String,
    pub target: Option<String>,
    pub met: Option<bool>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Limits {
    pub disk: Vec<DiskResult>,
    /// The disk again at the end of the run (shorter), to show drift.
    pub disk_after: Vec<DiskResult>,
    pub loopback_tcp: Option<LoopbackResult>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub label: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tool: String,
    pub version: String,
    pub command: String,
    pub started_utc: String,
    pub finished_utc: String,
    pub total_seconds: f64,
    pub bootstrap: String,
    pub machine: Machine,
    pub librdkafka: String,
    pub loadavg_start: Vec<f64>,
    pub loadavg_end: Vec<f64>,
    pub disk_dir: Option<String>,
    pub disk_mount: Option<Mount>,
    pub labels: BTreeMap<String, String>,
    pub limits: Limits,
    pub runs: Vec<RunResult>,
    pub skipped: Vec<Skipped>,
    pub ratios: Vec<Ratio>,
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// Machine busy %, and in parentheses the part that neither this client nor the server used
/// (other work on a shared machine).
fn busy_cell(cpu: &crate::sys::CpuUse, nproc: usize) -> String {
    match (cpu.machine_busy_pct, cpu.client_cores, cpu.server_cores) {
        (Some(busy), Some(c), Some(s)) => {
            let others = (busy - 100.0 * (c + s) / nproc.max(1) as f64).max(0.0);
            format!("{busy:.0} ({others:.0})")
        }
        (Some(busy), _, _) => format!("{busy:.0}"),
        _ => "-".into(),
    }
}

fn load_cell(run: &RunResult) -> String {
    match run.spec.rate {
        None => "max".into(),
        Some(r) => format!("{}/s, linger {}", thousands(r), run.spec.linger_ms),
    }
}

/// The report as Markdown tables (the same text goes into docs/benchmarks.md).
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(
        s,
        "chronik-bench {} against {}  |  {}  |  {} ({} CPUs, {} GiB), kernel {}  |  librdkafka {}",
        r.version,
        r.bootstrap,
        r.started_utc,
        m.cpu_model,
        m.nproc,
        opt(m.memory_gib, 1),
        m.kernel,
        r.librdkafka
    );
    let la = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(
        s,
        "load average at start {}, at end {}; total {:.0} s",
        la(&r.loadavg_start),
        la(&r.loadavg_end),
        r.total_seconds
    );
    if let Some(d) = &r.disk_dir {
        let mount = r.disk_mount.as_ref().map_or_else(String::new, |m| {
            format!(" ({} {} on {})", m.fs_type, m.device, m.mount_point)
        });
        let _ = writeln!(s, "disk test dir {d}{mount}");
    }
    for (k, v) in &r.labels {
        let _ = writeln!(s, "{k}: {v}");
    }

    if !r.limits.disk.is_empty() {
        let _ = writeln!(
            s,
            "\nDisk limit (sequential write + fdatasync per chunk):\n"
        );
        let _ = writeln!(
            s,
            "| chunk | MB/s | fdatasync p50 ms | p99 ms | max ms | syncs | at the end: MB/s | p99 ms |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|");
        for d in &r.limits.disk {
            let after = r
                .limits
                .disk_after
                .iter()
                .find(|a| a.chunk_bytes == d.chunk_bytes);
            let _ = writeln!(
                s,
                "| {} KiB | {:.1} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
                d.chunk_bytes >> 10,
                d.mb_per_s,
                d.fdatasync.p50_ms,
                d.fdatasync.p99_ms,
                d.fdatasync.max_ms,
                d.syncs,
                opt(after.map(|a| a.mb_per_s), 1),
                opt(after.map(|a| a.fdatasync.p99_ms), 2),
            );
        }
    }
    if let Some(l) = &r.limits.loopback_tcp {
        let _ = writeln!(
            s,
            "\nLoopback TCP (one stream, {} KiB writes): {:.1} MB/s",
            l.write_bytes >> 10,
            l.mb_per_s
        );
    }

    if !r.runs.is_empty() {
        let vb = r.runs[0].spec.value_bytes;
        let _ = writeln!(
            s,
            "\nThroughput ({} B values; MB = 10^6 B; \"÷ disk\" = produce MB/s ÷ the disk limit at the chunk size closest to the bytes per fdatasync, the better of start and end):\n",
            vb
        );
        let _ = writeln!(
            s,
            "| topic | acks | idem | load | produced msg/s | MB/s | ÷ disk (chunk) | live consumed msg/s | read-back msg/s | read-back MB/s | B/fdatasync | server cores | client cores | machine busy % (others) |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for run in &r.runs {
            let sp = &run.spec;
            let dr = run.disk_ratio.as_ref().map_or_else(
                || "-".to_string(),
                |d| format!("{:.2} ({} KiB)", d.ratio, d.chunk_bytes >> 10),
            );
            let live = run
                .consume_live
                .as_ref()
                .map_or_else(|| "-".into(), |c| thousands(c.msgs_per_s));
            let (rb_msgs, rb_mb) = run.read_back.as_ref().map_or_else(
                || ("-".into(), "-".into()),
                |c| (thousands(c.msgs_per_s), format!("{:.1}", c.mb_per_s)),
            );
            let _ = writeln!(
                s,
                "| 1 × {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |",
                sp.partitions,
                sp.acks,
                if sp.idempotence { "on" } else { "off" },
                load_cell(run),
                thousands(run.produce.msgs_per_s),
                run.produce.mb_per_s,
                dr,
                live,
                rb_msgs,
                rb_mb,
                run.server
                    .as_ref()
                    .and_then(|c| c.produce_bytes_per_fsync)
                    .map_or_else(|| "-".into(), thousands),
                opt(run.cpu.server_cores, 2),
                opt(run.cpu.client_cores, 2),
                busy_cell(&run.cpu, m.nproc),
            );
        }
        let _ = writeln!(
            s,
            "\nLatency in ms (produce: send, or intended send at a fixed rate, to delivery report; end-to-end: the same start to receipt by the live consumer):\n"
        );
        let _ = writeln!(
            s,
            "| topic | acks | idem | load | produce p50 | p99 | p99.9 | max | e2e p50 | p99 | p99.9 | max | complete |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for run in &r.runs {
            let sp = &run.spec;
            let p = &run.produce.latency;
            let e = run.consume_live.as_ref().and_then(|c| c.end_to_end.clone());
            let cell = |f: fn(&LatencySummary) -> f64| {
                e.as_ref()
                    .map_or_else(|| "-".into(), |e| format!("{:.2}", f(e)))
            };
            let complete = match (&run.consume_live, &run.read_back) {
                (Some(c), _) | (None, Some(c)) => {
                    if c.complete && c.out_of_order == 0 && c.gaps == 0 && run.produce.failed == 0 {
                        "yes".to_string()
                    } else {
                        format!(
                            "NO: failed {} consumed {}/{} out-of-order {} gaps {}",
                            run.produce.failed,
                            c.consumed,
                            run.produce.acked,
                            c.out_of_order,
                            c.gaps
                        )
                    }
                }
                (None, None) => "-".into(),
            };
            let _ = writeln!(
                s,
                "| 1 × {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
                sp.partitions,
                sp.acks,
                if sp.idempotence { "on" } else { "off" },
                load_cell(run),
                p.p50_ms,
                p.p99_ms,
                p.p999_ms,
                p.max_ms,
                cell(|e| e.p50_ms),
                cell(|e| e.p99_ms),
                cell(|e| e.p999_ms),
                cell(|e| e.max_ms),
                complete
            );
        }
    }
    for sk in &r.skipped {
        let _ = writeln!(s, "\nskipped {}: {}", sk.label, sk.reason);
    }
    if !r.ratios.is_empty() {
        let _ = writeln!(s, "\nRatios (same run):\n");
        let _ = writeln!(s, "| ratio | value | target | |");
        let _ = writeln!(s, "|---|---:|---:|---|");
        for q in &r.ratios {
            let _ = writeln!(
                s,
                "| {} | **{:.2}** | {} | {} |",
                q.how,
                q.value,
                q.target.as_deref().unwrap_or(""),
                match q.met {
                    Some(true) => "met",
                    Some(false) => "missed",
                    None => "",
                }
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(chunk: usize, mb: f64) -> DiskResult {
        DiskResult {
            chunk_bytes: chunk,
            seconds: 1.0,
            syncs: 1,
            mb_per_s: mb,
            fdatasync: LatencySummary::default(),
        }
    }

    #[test]
    fn closest_chunk_is_nearest_in_log_scale() {
        let d = [disk(16 << 10, 1.0), disk(64 << 10, 2.0), disk(1 << 20, 3.0)];
        assert_eq!(
            closest_chunk(&d, Some(20_000.0)).unwrap().chunk_bytes,
            16 << 10
        );
        assert_eq!(
            closest_chunk(&d, Some(300_000.0)).unwrap().chunk_bytes,
            1 << 20
        );
        assert_eq!(
            closest_chunk(&d, Some(200_000.0)).unwrap().chunk_bytes,
            64 << 10
        );
        assert_eq!(closest_chunk(&d, None).unwrap().chunk_bytes, 1 << 20);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn latency_summary_in_ms() {
        let mut h = new_histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let s = LatencySummary::from_micros(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
    }
}
