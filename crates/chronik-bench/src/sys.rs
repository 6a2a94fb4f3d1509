//! The machine around the benchmark: CPU use per phase (client, server, whole machine), load
//! average, the filesystem of the data dir, the server's Prometheus counters, wall-clock time.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Process-wide monotonic clock in nanoseconds since the Unix epoch: anchored once to the wall
/// clock, then advanced by `Instant`, so it never jumps during a run and is comparable between
/// threads (producers stamp it into values, consumers read it back).
pub fn now_ns() -> u64 {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    let (start, unix_ns) = ANCHOR.get_or_init(|| {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        (Instant::now(), unix)
    });
    unix_ns + start.elapsed().as_nanos() as u64
}

/// `YYYY-MM-DDTHH:MM:SSZ` for the current time.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .unwrap_or(100.0) // USER_HZ on every Linux architecture we run on
    })
}

/// utime + stime of a process (all its threads) in seconds; `pid` may be "self".
fn proc_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal.
fn machine_cpu() -> Option<Vec<u64>> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 8).then_some(v)
}

/// CPU counters at one moment.
#[derive(Clone)]
pub struct CpuSnap {
    t: Instant,
    client: Option<f64>,
    server: Option<f64>,
    machine: Option<Vec<u64>>,
}

/// CPU use between two snapshots, in cores (1.0 = one core busy all the time) and percent of
/// the whole machine.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuUse {
    pub seconds: f64,
    pub client_cores: Option<f64>,
    pub server_cores: Option<f64>,
    pub machine_busy_pct: Option<f64>,
    pub machine_iowait_pct: Option<f64>,
    pub machine_steal_pct: Option<f64>,
}

impl CpuSnap {
    pub fn take(server_pid: Option<u32>) -> Self {
        CpuSnap {
            t: Instant::now(),
            client: proc_cpu_seconds("self"),
            server: server_pid.and_then(|p| proc_cpu_seconds(&p.to_string())),
            machine: machine_cpu(),
        }
    }

    pub fn since(&self, start: &CpuSnap) -> CpuUse {
        let wall = self.t.duration_since(start.t).as_secs_f64().max(1e-9);
        let cores = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(round((b - a) / wall, 2)),
            _ => None,
        };
        let mut out = CpuUse {
            seconds: round(wall, 3),
            client_cores: cores(start.client, self.client),
            server_cores: cores(start.server, self.server),
            ..CpuUse::default()
        };
        if let (Some(a), Some(b)) = (&start.machine, &self.machine) {
            let d: Vec<u64> = a.iter().zip(b).map(|(a, b)| b.saturating_sub(*a)).collect();
            let total = d.iter().sum::<u64>().max(1) as f64;
            out.machine_busy_pct = Some(round(
                100.0 * (total - d[3] as f64 - d[4] as f64) / total,
                1,
            ));
            out.machine_iowait_pct = Some(round(100.0 * d[4] as f64 / total, 1));
            out.machine_steal_pct = Some(round(100.0 * d[7] as f64 / total, 1));
        }
        out
    }
}

pub fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

pub fn loadavg() -> Vec<f64> {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect()
}

/// Static facts about the machine for the report.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub host: String,
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory_gib: Option<f64>,
}

pub fn machine() -> Machine {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default().trim().to_string();
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| round(kb / 1024.0 / 1024.0, 1));
    Machine {
        host: read("/proc/sys/kernel/hostname"),
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model,
        kernel: read("/proc/sys/kernel/osrelease"),
        memory_gib,
    }
}

/// The mount that holds `dir` (longest mount-point prefix in /proc/mounts).
#[derive(Clone, Debug, Serialize)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: String,
}

pub fn mount_of(dir: &Path) -> Option<Mount> {
    let dir = fs::canonicalize(dir).ok()?;
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| Mount {
                device: f[0].to_string(),
                mount_point: f[1].replace("\\040", " "),
                fs_type: f[2].to_string(),
                options: f[3].to_string(),
            })
        })
        .filter(|m| dir.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.len())
}

// ---------------------------------------------------------------------------------------------
// The server's /metrics (optional): request sizes, fsyncs, group-commit rounds per phase.
// ---------------------------------------------------------------------------------------------

/// `GET http://HOST:PORT/PATH` with a plain HTTP/1.0 request; every `name{labels} value` line
/// of the body. `None` when the server cannot be reached (the report then has no server
/// counters).
pub fn scrape_metrics(url: &str) -> Option<HashMap<String, f64>> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    let addr = hostport.to_socket_addrs().ok()?.next()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.") || !head.split_whitespace().nth(1)?.starts_with('2') {
        return None;
    }
    let mut out = HashMap::new();
    for line in body.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some((name, value)) = line.rsplit_once(' ') {
            if let Ok(v) = value.parse::<f64>() {
                out.insert(name.trim().to_string(), v);
            }
        }
    }
    Some(out)
}

/// The server's counters over one phase.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerCounters {
    pub produce_requests: u64,
    pub produce_bytes: u64,
    pub fetch_requests: u64,
    pub fetch_bytes: u64,
    /// fdatasync calls of the group commit (one per partition file per round).
    pub fsyncs: u64,
    pub fsync_seconds: f64,
    pub commit_rounds: u64,
    pub avg_produce_request_bytes: Option<f64>,
    /// Produce bytes per fdatasync: what one fdatasync made durable, on average.
    pub produce_bytes_per_fsync: Option<f64>,
    pub avg_partitions_per_round: Option<f64>,
    pub avg_fsync_ms: Option<f64>,
}

pub fn server_counters(
    before: &HashMap<String, f64>,
    after: &HashMap<String, f64>,
) -> ServerCounters {
    let d = |k: &str| {
        let a = after.get(k).copied().unwrap_or(0.0);
        let b = before.get(k).copied().unwrap_or(0.0);
        (a - b).max(0.0)
    };
    let mut c = ServerCounters {
        produce_requests: d("chronik_requests_total{api=\"Produce\"}") as u64,
        produce_bytes: d("chronik_produce_bytes_total") as u64,
        fetch_requests: d("chronik_requests_total{api=\"Fetch\"}") as u64,
        fetch_bytes: d("chronik_fetch_bytes_total") as u64,
        fsyncs: d("chronik_fsync_duration_seconds_count") as u64,
        fsync_seconds: round(d("chronik_fsync_duration_seconds_sum"), 3),
        commit_rounds: d("chronik_group_commit_round_partitions_count") as u64,
        ..ServerCounters::default()
    };
    let ratio = |a: f64, b: u64| (b > 0).then(|| round(a / b as f64, 1));
    c.avg_produce_request_bytes = ratio(c.produce_bytes as f64, c.produce_requests);
    c.produce_bytes_per_fsync = ratio(c.produce_bytes as f64, c.fsyncs);
    c.avg_partitions_per_round = ratio(
        d("chronik_group_commit_round_partitions_sum"),
        c.commit_rounds,
    );
    c.avg_fsync_ms = (c.fsyncs > 0).then(|| round(c.fsync_seconds * 1e3 / c.fsyncs as f64, 3));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_now_is_iso_8601() {
        let t = utc_now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }

    #[test]
    fn server_counters_from_prometheus_deltas() {
        let before: HashMap<String, f64> = [
            ("chronik_produce_bytes_total".to_string(), 1000.0),
            ("chronik_requests_total{api=\"Produce\"}".to_string(), 1.0),
        ]
        .into();
        let after: HashMap<String, f64> = [
            ("chronik_produce_bytes_total".to_string(), 5000.0),
            ("chronik_requests_total{api=\"Produce\"}".to_string(), 5.0),
            ("chronik_fsync_duration_seconds_count".to_string(), 2.0),
            ("chronik_fsync_duration_seconds_sum".to_string(), 0.004),
        ]
        .into();
        let c = server_counters(&before, &after);
        assert_eq!(c.produce_requests, 4);
        assert_eq!(c.avg_produce_request_bytes, Some(1000.0));
        assert_eq!(c.produce_bytes_per_fsync, Some(2000.0));
        assert_eq!(c.avg_fsync_ms, Some(2.0));
    }

    #[test]
    fn cpu_of_this_process_is_readable() {
        assert!(proc_cpu_seconds("self").is_some());
    }
}
