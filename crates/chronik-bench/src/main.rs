//! chronik-bench: a benchmark client for Chronik, or any Kafka-compatible broker, using
//! librdkafka (the `rdkafka` crate). See docs/benchmarks.md and scripts/bench-rs.sh.
//!
//! One invocation runs one workload (the flags), or with `--matrix standard` the standard set:
//! 1 × 1 and 1 × 16 partitions × acks=1/all × idempotence off/on at maximum throughput, then
//! 1 × 16 acks=all at a fixed rate of half the measured maximum for latency. With `--disk-dir`
//! it first measures the machine's limits (sequential write + fdatasync on that disk, loopback
//! TCP) and reports throughput as a ratio to them. Progress goes to stderr, the tables to
//! stdout, everything to `--json`. Exit status 3 when a delivery failed or the consumers did not
//! read every acknowledged message exactly once and in order; 1 on other errors.

mod limits;
mod report;
mod sys;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Parser, ValueEnum};
use rdkafka::config::ClientConfig;
use rdkafka::producer::BaseProducer;

use report::{disk_ratio, Limits, Ratio, Report, Skipped};
use sys::round;
use workload::{Env, RunResult, Spec};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Matrix {
    /// 1×1 and 1×16 partitions × acks=1/all × idempotence off/on at max throughput, then
    /// 1×16 acks=all idempotence off at half the measured rate (linger.ms 0, then 5).
    Standard,
}

#[derive(Parser, Debug)]
#[command(name = "chronik-bench", version, about, long_about = None)]
struct Cli {
    /// Bootstrap address of any Kafka-compatible broker.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Topic name (deleted and re-created for the run); default chronik-bench-<run id>.
    #[arg(long)]
    topic: Option<String>,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 1)]
    topic_partitions: i32,
    /// Replication factor of the topic (-1: the broker's default; 3 on a three-node cluster
    /// for replicated figures).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    replication_factor: i32,
    /// Value size in bytes (at least 24: the header with the send timestamp).
    #[arg(long, default_value_t = 1024)]
    value_bytes: usize,
    /// Producer acks: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = ["0", "1", "all", "-1"])]
    acks: String,
    /// enable.idempotence (librdkafka requires acks=all with it).
    #[arg(long, default_value_t = false, action = ArgAction::Set)]
    idempotence: bool,
    /// Producer threads, one librdkafka producer each.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Live consumer threads, one librdkafka consumer each, reading while the producers write
    /// (end-to-end latency); 0 = none.
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Messages to produce over all producers (default 1,000,000 unless --duration-s).
    #[arg(long)]
    messages: Option<u64>,
    /// Produce for this many seconds (with --messages: whichever ends first).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Fixed rate in messages/s over all producers (latency without coordinated omission);
    /// default: as fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 5.0)]
    linger_ms: f64,
    /// Producer batch.size in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    batch_bytes: u64,
    /// Consumers subscribe() in a consumer group instead of assign()ing partitions from the
    /// beginning (includes the group's rebalance in the figures).
    #[arg(long)]
    group: bool,
    /// After producing, read the whole topic back with fresh consumers (consume throughput
    /// without the producers competing for the machine).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    read_back: bool,
    /// Keep the topic after the run (default: delete it, to free the disk).
    #[arg(long)]
    keep_topic: bool,
    /// Extra librdkafka producer property (repeatable).
    #[arg(long = "producer-prop", value_name = "KEY=VALUE")]
    producer_props: Vec<String>,
    /// Extra librdkafka consumer property (repeatable).
    #[arg(long = "consumer-prop", value_name = "KEY=VALUE")]
    consumer_props: Vec<String>,
    /// Run a set of workloads instead of the one given by the flags.
    #[arg(long, value_enum)]
    matrix: Option<Matrix>,
    /// Matrix: seconds of each maximum-throughput workload.
    #[arg(long, default_value_t = 5.0)]
    matrix_duration_s: f64,
    /// Matrix: seconds of each fixed-rate workload.
    #[arg(long, default_value_t = 10.0)]
    fixed_duration_s: f64,
    /// Matrix: the fixed rate as a fraction of the measured 1×16 acks=all maximum.
    #[arg(long, default_value_t = 0.5)]
    fixed_fraction: f64,
    /// Measure the disk limit here (use the broker's data dir or a sibling on the same
    /// filesystem); without it the disk is not measured.
    #[arg(long)]
    disk_dir: Option<PathBuf>,
    /// Seconds per chunk size of the disk test (run at the start and again at the end).
    #[arg(long, default_value_t = 3.0)]
    disk_seconds: f64,
    /// Seconds of the loopback TCP test; 0 skips it.
    #[arg(long, default_value_t = 2.0)]
    loopback_seconds: f64,
    /// The broker's pid, to report its CPU use per phase.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The broker's Prometheus endpoint (http://HOST:PORT/metrics), for request sizes and
    /// fdatasyncs per phase (Chronik's metric names).
    #[arg(long)]
    metrics_url: Option<String>,
    /// Timeout for deliveries, flushes and consumer assignment, seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout_s: f64,
    /// Consumers give up after this long without a message once the producers are done.
    #[arg(long, default_value_t = 20.0)]
    idle_timeout_s: f64,
    /// Seconds between progress lines on stderr.
    #[arg(long, default_value_t = 1.0)]
    progress_s: f64,
    /// Free-form KEY=VALUE recorded in the report (repeatable), e.g. the server build.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Write the full report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn key_values(items: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{flag} takes KEY=VALUE, got '{kv}'"),
        })
        .collect()
}

fn acks_name(a: &str) -> &str {
    if a == "-1" {
        "all"
    } else {
        a
    }
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("chronik-bench: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let t0 = Instant::now();
    let started_utc = sys::utc_now();
    let loadavg_start = sys::loadavg();
    let run_id = format!("{:x}", sys::now_ns() & 0xff_ffff);
    let topic_base = cli
        .topic
        .clone()
        .unwrap_or_else(|| format!("chronik-bench-{run_id}"));
    let env = Env {
        bootstrap: cli.bootstrap.clone(),
        topic: topic_base.clone(),
        replication_factor: cli.replication_factor,
        keep_topic: cli.keep_topic,
        producer_props: key_values(&cli.producer_props, "--producer-prop")?,
        consumer_props: key_values(&cli.consumer_props, "--consumer-prop")?,
        timeout: Duration::from_secs_f64(cli.timeout_s),
        idle_timeout: Duration::from_secs_f64(cli.idle_timeout_s),
        server_pid: cli.server_pid,
        metrics_url: cli.metrics_url.clone(),
        progress_interval: Duration::from_secs_f64(cli.progress_s.max(0.1)),
    };
    if env
        .producer_props
        .iter()
        .chain(&env.consumer_props)
        .any(|(k, _)| k == "debug")
    {
        workload::CLIENT_DEBUG.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let labels: BTreeMap<String, String> =
        key_values(&cli.labels, "--label")?.into_iter().collect();
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();

    // 1. the machine's limits
    let mut lim = Limits::default();
    if let Some(dir) = &cli.disk_dir {
        eprintln!(
            "==> disk limit in {} ({} s per chunk size)",
            dir.display(),
            cli.disk_seconds
        );
        lim.disk = limits::measure_disk(dir, cli.disk_seconds, "disk")?;
    }
    if cli.loopback_seconds > 0.0 {
        eprintln!("==> loopback TCP ({} s)", cli.loopback_seconds);
        lim.loopback_tcp = Some(limits::measure_loopback(cli.loopback_seconds)?);
    }

    // 2. the workloads
    let base = Spec {
        label: String::new(),
        partitions: cli.topic_partitions,
        value_bytes: cli.value_bytes,
        acks: acks_name(&cli.acks).to_string(),
        idempotence: cli.idempotence,
        producers: cli.producers,
        consumers: cli.consumers,
        messages: cli.messages,
        duration_s: cli.duration_s,
        rate: cli.rate,
        linger_ms: cli.linger_ms,
        batch_bytes: cli.batch_bytes,
        group: cli.group,
        read_back: cli.read_back,
    };
    let mut runs: Vec<RunResult> = Vec::new();
    let mut skipped = Vec::new();
    match cli.matrix {
        None => {
            let mut spec = base.clone();
            if spec.messages.is_none() && spec.duration_s.is_none() {
                spec.messages = Some(1_000_000);
            }
            spec.label = label(&spec);
            runs.push(workload::run(&spec, &env)?);
        }
        Some(Matrix::Standard) => {
            let max_base = Spec {
                duration_s: cli.duration_s.or(Some(cli.matrix_duration_s)),
                rate: None,
                ..base.clone()
            };
            for parts in [16, 1] {
                for (acks, idem) in [("all", false), ("1", false), ("all", true), ("1", true)] {
                    let mut spec = Spec {
                        partitions: parts,
                        acks: acks.into(),
                        idempotence: idem,
                        ..max_base.clone()
                    };
                    spec.label = label(&spec);
                    if acks != "all" && idem {
                        skipped.push(Skipped {
                            label: spec.label.clone(),
                            reason: client_refusal(&cli.bootstrap, &spec),
                        });
                        continue;
                    }
                    let env = Env {
                        topic: format!("{topic_base}-p{parts}-acks{acks}-idem{}", u8::from(idem)),
                        ..env.clone()
                    };
                    runs.push(workload::run(&spec, &env)?);
                }
            }
            let main_rate = runs
                .iter()
                .find(|r| is_main(r))
                .map(|r| r.produce.msgs_per_s)
                .unwrap_or(0.0);
            let rate = (main_rate * cli.fixed_fraction).round();
            if rate >= 1.0 {
                for linger in [0.0, 5.0] {
                    let mut spec = Spec {
                        partitions: 16,
                        acks: "all".into(),
                        idempotence: false,
                        rate: Some(rate),
                        duration_s: Some(cli.fixed_duration_s),
                        messages: None,
                        linger_ms: linger,
                        ..base.clone()
                    };
                    spec.label = label(&spec);
                    let env = Env {
                        topic: format!("{topic_base}-p16-fixed-linger{linger}"),
                        ..env.clone()
                    };
                    runs.push(workload::run(&spec, &env)?);
                }
            } else {
                skipped.push(Skipped {
                    label: "fixed rate".into(),
                    reason: "no 1×16 acks=all rate was measured".into(),
                });
            }
        }
    }

    // 3. the disk again: how much it drifted during the run; the limit is the better of the two
    if let Some(dir) = &cli.disk_dir {
        eprintln!("==> disk again, {} s per chunk size", cli.disk_seconds);
        lim.disk_after = limits::measure_disk(dir, cli.disk_seconds, "disk again")?;
    }
    for r in &mut runs {
        r.disk_ratio = disk_ratio(r, &lim);
    }
    let ratios = ratios(&runs, &lim);

    let report = Report {
        tool: "chronik-bench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_utc,
        finished_utc: sys::utc_now(),
        total_seconds: round(t0.elapsed().as_secs_f64(), 1),
        bootstrap: cli.bootstrap.clone(),
        machine: sys::machine(),
        librdkafka,
        loadavg_start,
        loadavg_end: sys::loadavg(),
        disk_dir: cli.disk_dir.as_ref().map(|d| d.display().to_string()),
        disk_mount: cli.disk_dir.as_deref().and_then(sys::mount_of),
        labels,
        limits: lim,
        runs,
        skipped,
        ratios,
    };
    println!("{}", report::render(&report));
    if let Some(path) = &cli.json {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    let problems = integrity_problems(&report.runs);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("chronik-bench: {p}");
        }
        std::process::exit(3);
    }
    Ok(())
}

/// Failed deliveries, and messages that the consumers did not see exactly once and in order.
fn integrity_problems(runs: &[RunResult]) -> Vec<String> {
    let mut out = Vec::new();
    for r in runs {
        if r.produce.failed > 0 {
            out.push(format!(
                "{}: {} deliveries failed",
                r.spec.label, r.produce.failed
            ));
        }
        for (what, c) in [("live", &r.consume_live), ("read-back", &r.read_back)] {
            let Some(c) = c else { continue };
            if !c.complete || c.out_of_order > 0 || c.gaps > 0 {
                out.push(format!(
                    "{}: {what} consumers read {} of {} acknowledged messages, {} out of order, {} gaps",
                    r.spec.label, c.consumed, r.produce.acked, c.out_of_order, c.gaps
                ));
            }
        }
    }
    out
}

fn label(s: &Spec) -> String {
    let mut l = format!(
        "1x{} acks={} idem={} {}",
        s.partitions,
        s.acks,
        if s.idempotence { "on" } else { "off" },
        s.load()
    );
    if s.rate.is_some() {
        l.push_str(&format!(" linger={}", s.linger_ms));
    }
    l
}

/// Why the client will not run this combination: librdkafka's own message.
fn client_refusal(bootstrap: &str, spec: &Spec) -> String {
    let made: rdkafka::error::KafkaResult<BaseProducer> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", &spec.acks)
        .set("enable.idempotence", spec.idempotence.to_string())
        .create();
    match made {
        Err(e) => format!("librdkafka refuses the configuration: {e}"),
        Ok(_) => "not run (librdkafka accepted it; idempotence implies acks=all)".into(),
    }
}

/// The main figure: 1×16 (the many-partition case) acks=all, no idempotence, max throughput.
fn is_main(r: &RunResult) -> bool {
    r.spec.partitions == 16 && r.spec.acks == "all" && !r.spec.idempotence && r.spec.rate.is_none()
}

fn ratio(name: &str, value: f64, how: String, target: Option<(&str, bool)>) -> Ratio {
    Ratio {
        name: name.into(),
        value: round(value, 3),
        how,
        target: target.map(|(t, _)| t.to_string()),
        met: target.map(|(_, m)| m),
    }
}

/// The ratios of the targets (docs/benchmarks.md), from this run's figures only.
fn ratios(runs: &[RunResult], lim: &Limits) -> Vec<Ratio> {
    let mut out = Vec::new();
    let main = runs.iter().find(|r| is_main(r));
    // A single-workload run: its own ratio to the disk.
    let subject = main.or(if runs.len() == 1 { runs.first() } else { None });
    if let Some(m) = subject {
        let what = format!(
            "produce 1 × {} acks={}{} ({:.1} MB/s)",
            m.spec.partitions,
            m.spec.acks,
            if m.spec.idempotence {
                " idempotent"
            } else {
                ""
            },
            m.produce.mb_per_s
        );
        if let Some(d) = &m.disk_ratio {
            let v = d.ratio;
            out.push(ratio(
                "produce_vs_disk",
                v,
                format!(
                    "{what} ÷ disk {:.1} MB/s at {} KiB chunks (closest to the {}: {} B; the better of {:.1} at the start and {} at the end)",
                    d.disk_mb_per_s,
                    d.chunk_bytes >> 10,
                    d.basis,
                    opt0(d.basis_bytes),
                    d.disk_start_mb_per_s,
                    d.disk_end_mb_per_s.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
                ),
                main.map(|_| ("≥ 0.70", v >= 0.70)),
            ));
            out.push(ratio(
                "produce_vs_best_disk",
                d.ratio_to_best,
                format!(
                    "{what} ÷ the best disk figure at any chunk size ({:.1} MB/s)",
                    d.best_disk_mb_per_s
                ),
                None,
            ));
        }
        if let Some(rb) = &m.read_back {
            let v = rb.mb_per_s / m.produce.mb_per_s.max(1e-9);
            out.push(ratio(
                "consume_vs_produce",
                v,
                format!(
                    "read-back consume 1 × {} ({:.1} MB/s) ÷ {what}",
                    m.spec.partitions, rb.mb_per_s
                ),
                main.map(|_| ("≥ 2", v >= 2.0)),
            ));
        }
        if let Some(l) = &lim.loopback_tcp {
            out.push(ratio(
                "produce_vs_loopback_tcp",
                m.produce.mb_per_s / l.mb_per_s.max(1e-9),
                format!("{what} ÷ loopback TCP {:.1} MB/s", l.mb_per_s),
                None,
            ));
        }
        if let Some(d) = &m.disk_ratio {
            let after = lim
                .disk_after
                .iter()
                .find(|a| a.chunk_bytes == d.chunk_bytes);
            if let Some(a) = after {
                out.push(ratio(
                    "disk_drift",
                    a.mb_per_s / d.disk_start_mb_per_s.max(1e-9),
                    format!(
                        "disk at {} KiB chunks at the end ({:.1} MB/s) ÷ at the start ({:.1} MB/s)",
                        d.chunk_bytes >> 10,
                        a.mb_per_s,
                        d.disk_start_mb_per_s
                    ),
                    None,
                ));
            }
        }
    }
    for r in runs.iter().filter(|r| r.spec.rate.is_some()) {
        let Some(d) = &r.disk_ratio else { continue };
        let sync_p99 = d.fdatasync_p99_ms.max(1e-6);
        let linger0 = r.spec.linger_ms == 0.0;
        let target = (linger0 && r.spec.partitions == 16).then_some(("≤ 3", false));
        let v = r.produce.latency.p99_ms / sync_p99;
        out.push(ratio(
            if linger0 { "fixed_rate_p99_vs_fdatasync_p99" } else { "fixed_rate_linger5_p99_vs_fdatasync_p99" },
            v,
            format!(
                "produce p99 {:.2} ms at a fixed {:.0} msg/s (achieved {:.0}), linger.ms {} ÷ fdatasync p99 {:.2} ms at {} KiB chunks (the lower of start and end)",
                r.produce.latency.p99_ms,
                r.spec.rate.unwrap_or(0.0),
                r.produce.msgs_per_s,
                r.spec.linger_ms,
                sync_p99,
                d.chunk_bytes >> 10
            ),
            target.map(|(t, _)| (t, v <= 3.0)),
        ));
        if let Some(e) = r.consume_live.as_ref().and_then(|c| c.end_to_end.as_ref()) {
            out.push(ratio(
                if linger0 { "fixed_rate_e2e_p99_vs_fdatasync_p99" } else { "fixed_rate_linger5_e2e_p99_vs_fdatasync_p99" },
                e.p99_ms / sync_p99,
                format!(
                    "end-to-end p99 {:.2} ms of the same run (linger.ms {}) ÷ fdatasync p99 {:.2} ms",
                    e.p99_ms, r.spec.linger_ms, sync_p99
                ),
                None,
            ));
        }
    }
    out
}

fn opt0(v: Option<f64>) -> String {
    v.map_or_else(|| "?".into(), |v| format!("{v:.0}"))
}
