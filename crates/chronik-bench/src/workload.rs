//! One workload: a fresh topic, N producers (librdkafka `BaseProducer`, one per thread, with
//! delivery callbacks) and N live consumers at the same time, then optionally a read-back of the
//! whole topic by fresh consumers.
//!
//! Every value starts with a 24-byte header: magic `CHRB`, the producer's index (u32 LE), the
//! producer's sequence number (u64 LE) and the send time in ns (u64 LE, [`now_ns`]). At a fixed
//! rate the send time is the *intended* one (start + seq / rate), so latency is measured without
//! coordinated omission: a send that is late because the client or the server stalled counts
//! from when it should have been sent. At maximum throughput it is the time of the `send` call.
//! Consumers use the header for end-to-end latency and check that each producer's messages
//! arrive in order, once, per partition.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::limits::fill_random;
use crate::report::{new_histogram, LatencySummary};
use crate::sys::{now_ns, round, scrape_metrics, server_counters, CpuSnap, CpuUse, ServerCounters};

pub const HEADER_BYTES: usize = 24;
const MAGIC: [u8; 4] = *b"CHRB";
/// A warm-up message each producer sends (and waits for) before the start line; consumers skip
/// it. It makes the start of the measurement independent of client start-up: the connection,
/// and with idempotence the producer id, which librdkafka only asks for after a 500 ms timer.
const WARMUP_MAGIC: [u8; 4] = *b"CHRW";
/// Delivery opaque of the warm-up message (a real send time is never 0).
const WARMUP_OPAQUE: usize = 0;
const MB: f64 = 1e6;
/// Errors kept per phase (the count is always complete).
const MAX_ERRORS_KEPT: usize = 10;

/// What to run.
#[derive(Clone, Debug, Serialize)]
pub struct Spec {
    pub label: String,
    pub partitions: i32,
    pub value_bytes: usize,
    pub acks: String,
    pub idempotence: bool,
    pub producers: usize,
    pub consumers: usize,
    /// Total over all producers; with `duration_s` the run stops at whichever comes first.
    pub messages: Option<u64>,
    pub duration_s: Option<f64>,
    /// Fixed rate, messages/s over all producers; `None` = as fast as possible.
    pub rate: Option<f64>,
    pub linger_ms: f64,
    pub batch_bytes: u64,
    /// Consumers `subscribe()` in a consumer group instead of `assign()`ing partitions.
    pub group: bool,
    pub read_back: bool,
}

impl Spec {
    pub fn load(&self) -> String {
        match self.rate {
            None => "max".into(),
            Some(r) => format!("fixed {r:.0}/s"),
        }
    }
}

/// Where and how to run it.
#[derive(Clone, Debug)]
pub struct Env {
    pub bootstrap: String,
    pub topic: String,
    /// Replication factor of the topics the run creates (-1: the broker's default).
    pub replication_factor: i32,
    pub keep_topic: bool,
    pub producer_props: Vec<(String, String)>,
    pub consumer_props: Vec<(String, String)>,
    pub timeout: Duration,
    pub idle_timeout: Duration,
    pub server_pid: Option<u32>,
    pub metrics_url: Option<String>,
    pub progress_interval: Duration,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ProduceResult {
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    /// From the start of the phase to the last delivery report.
    pub seconds: f64,
    pub msgs_per_s: f64,
    /// Value bytes only, MB = 10^6 bytes.
    pub mb_per_s: f64,
    /// Send (intended send at a fixed rate) to delivery report.
    pub latency: LatencySummary,
    /// Fixed rate only: how far behind its schedule a producer ever was when sending.
    pub max_schedule_lag_ms: Option<f64>,
    /// Average MessageSet size from librdkafka's statistics.
    pub client_avg_batch_bytes: Option<f64>,
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ConsumeResult {
    pub consumers: usize,
    pub consumed: u64,
    /// Live: from the producers' start to the last message. Read-back: from the first message
    /// to the last (the start-up is `first_message_s`).
    pub seconds: f64,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    /// From the start of the phase (producers' start; read-back: every consumer assigned) to
    /// the first message.
    pub first_message_s: Option<f64>,
    /// Live consumers only: (intended) send time to receipt by the consumer.
    pub end_to_end: Option<LatencySummary>,
    /// Messages whose producer sequence did not advance within its partition (duplicates or
    /// reordering).
    pub out_of_order: u64,
    /// Jumps in a producer's sequence within a partition (messages skipped).
    pub gaps: u64,
    /// Messages without this tool's header.
    pub foreign: u64,
    /// Whether every acknowledged message was read before the deadline.
    pub complete: bool,
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub spec: Spec,
    pub topic: String,
    pub started_utc: String,
    pub produce: ProduceResult,
    pub consume_live: Option<ConsumeResult>,
    pub read_back: Option<ConsumeResult>,
    /// CPU over the produce + live consume phase.
    pub cpu: CpuUse,
    pub cpu_read_back: Option<CpuUse>,
    pub server: Option<ServerCounters>,
    pub server_read_back: Option<ServerCounters>,
    /// Filled in by the report: produce MB/s / disk MB/s at the closest chunk size.
    pub disk_ratio: Option<crate::report::DiskRatio>,
}

// ---------------------------------------------------------------------------------------------
// shared counters (read by the progress line)
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    last_ack_ns: AtomicU64,
    max_lag_ns: AtomicU64,
    consumed: AtomicU64,
    /// u64::MAX until the producers are done, then the number of acked messages.
    consume_target: AtomicU64,
    abort: AtomicBool,
    errors: Mutex<Vec<String>>,
    error_count: AtomicU64,
}

impl Counters {
    fn new() -> Arc<Self> {
        let c = Counters::default();
        c.consume_target.store(u64::MAX, Relaxed);
        Arc::new(c)
    }

    fn error(&self, what: String) {
        let n = self.error_count.fetch_add(1, Relaxed);
        if let Ok(mut e) = self.errors.lock() {
            if e.len() < MAX_ERRORS_KEPT {
                e.push(what.clone());
            }
        }
        if n < 3 {
            eprintln!("  error: {what}");
        }
    }
}

/// Set when a `debug` librdkafka property was given: then every librdkafka log line is printed,
/// not only warnings and errors.
pub static CLIENT_DEBUG: AtomicBool = AtomicBool::new(false);

/// A client configuration whose librdkafka log level lets warnings (and, with a `debug`
/// property, everything) through: rdkafka otherwise derives it from the `log` crate, which this
/// tool does not use, and librdkafka's warnings would be lost.
fn client_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set_log_level(if CLIENT_DEBUG.load(Relaxed) {
        RDKafkaLogLevel::Debug
    } else {
        RDKafkaLogLevel::Warning
    });
    c
}

fn log_rdkafka(level: RDKafkaLogLevel, fac: &str, msg: &str) {
    if (level as i32) <= (RDKafkaLogLevel::Warning as i32) || CLIENT_DEBUG.load(Relaxed) {
        let t = now_ns() / 1_000 % 100_000_000;
        eprintln!(
            "  {}.{:06} librdkafka {level:?} {fac}: {msg}",
            t / 1_000_000,
            t % 1_000_000
        );
    }
}

// ---------------------------------------------------------------------------------------------
// producers
// ---------------------------------------------------------------------------------------------

struct ProducerCtx {
    counters: Arc<Counters>,
    topic: String,
    hist: Mutex<Histogram<u64>>,
    /// (batches, bytes) summed over librdkafka's statistics windows for our topic.
    batches: Mutex<(i64, i64)>,
}

impl ClientContext for ProducerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_rdkafka(level, fac, msg);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.counters.error(format!("producer: {error}: {reason}"));
    }
    fn stats(&self, s: Statistics) {
        if let Some(t) = s.topics.get(&self.topic) {
            if let Ok(mut b) = self.batches.lock() {
                // Each emission covers the window since the previous one.
                b.0 += t.batchsize.cnt;
                b.1 += t.batchsize.sum;
            }
        }
    }
}

impl ProducerContext for ProducerCtx {
    /// The (intended) send time in ns.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let now = now_ns();
        if sent_ns == WARMUP_OPAQUE {
            if let Err((e, _)) = result {
                self.counters.error(format!("warm-up message failed: {e}"));
            }
            return;
        }
        match result {
            Ok(_) => {
                self.counters.acked.fetch_add(1, Relaxed);
                self.counters.last_ack_ns.fetch_max(now, Relaxed);
                if let Ok(mut h) = self.hist.lock() {
                    h.saturating_record((now.saturating_sub(sent_ns as u64) / 1_000).max(1));
                }
            }
            Err((e, _)) => {
                self.counters.failed.fetch_add(1, Relaxed);
                self.counters.error(format!("delivery failed: {e}"));
            }
        }
    }
}

fn producer_config(spec: &Spec, env: &Env, i: usize) -> ClientConfig {
    let mut c = client_config();
    c.set("bootstrap.servers", &env.bootstrap)
        .set("client.id", format!("chronik-bench-p{i}"))
        .set("acks", &spec.acks)
        .set("enable.idempotence", spec.idempotence.to_string())
        .set("linger.ms", spec.linger_ms.to_string())
        .set("batch.size", spec.batch_bytes.to_string())
        .set("compression.type", "none")
        .set("message.timeout.ms", env.timeout.as_millis().to_string())
        .set("statistics.interval.ms", "1000");
    for (k, v) in &env.producer_props {
        c.set(k, v);
    }
    c
}

struct ProducerOutcome {
    hist: Histogram<u64>,
    batches: (i64, i64),
}

/// Sleeps until `target_ns` while serving delivery reports.
fn wait_until(producer: &BaseProducer<ProducerCtx>, target_ns: u64) {
    loop {
        let now = now_ns();
        if now >= target_ns {
            return;
        }
        let rem = target_ns - now;
        if rem >= 2_000_000 {
            // librdkafka's poll has millisecond resolution: wake up a little early.
            producer.poll(Duration::from_nanos(rem - 1_000_000));
        } else {
            producer.poll(Duration::ZERO);
            thread::sleep(Duration::from_nanos(rem));
        }
    }
}

/// Where the producers meet: all created and connected, then one common start time.
struct StartLine {
    ready: Barrier,
    go: Barrier,
    start_ns: AtomicU64,
}

fn run_producer(
    i: usize,
    spec: &Spec,
    env: &Env,
    topic: &str,
    counters: Arc<Counters>,
    quota: Option<u64>,
    line: &StartLine,
) -> Result<ProducerOutcome> {
    let ctx = ProducerCtx {
        counters: Arc::clone(&counters),
        topic: topic.to_string(),
        hist: Mutex::new(new_histogram()),
        batches: Mutex::new((0, 0)),
    };
    // Create, connect and deliver one warm-up message before the start line, so that the
    // measurement starts with a ready client. Every producer reaches both barriers, even after
    // an error.
    let created = producer_config(spec, env, i)
        .create_with_context::<_, BaseProducer<ProducerCtx>>(ctx)
        .context("cannot create the producer")
        .and_then(|p| {
            p.client()
                .fetch_metadata(Some(topic), Duration::from_secs(30))
                .context("producer cannot fetch metadata")?;
            let mut warm = [0u8; HEADER_BYTES];
            warm[0..4].copy_from_slice(&WARMUP_MAGIC);
            let record = BaseRecord::with_opaque_to(topic, WARMUP_OPAQUE)
                .payload(&warm[..])
                .partition((i % spec.partitions as usize) as i32);
            p.send::<[u8], [u8]>(record)
                .map_err(|(e, _)| anyhow!("warm-up send failed: {e}"))?;
            p.flush(env.timeout)
                .context("warm-up message not delivered")?;
            Ok(p)
        });
    if created.is_err() {
        counters.abort.store(true, Relaxed);
    }
    line.ready.wait();
    line.go.wait();
    let producer = created?;
    let start_ns = line.start_ns.load(Relaxed);
    let deadline_ns = spec.duration_s.map(|d| start_ns + (d * 1e9) as u64);

    let rate = spec.rate.map(|r| r / spec.producers as f64);
    let mut buf = vec![0u8; spec.value_bytes];
    fill_random(&mut buf, 0xc0ff_ee00 + i as u64);
    buf[0..4].copy_from_slice(&MAGIC);
    buf[4..8].copy_from_slice(&(i as u32).to_le_bytes());
    let parts = spec.partitions as u64;
    let mut seq = 0u64;
    'send: loop {
        if counters.abort.load(Relaxed) || quota.is_some_and(|q| seq >= q) {
            break;
        }
        let stamp = match rate {
            Some(r) => {
                let intended = start_ns + (seq as f64 * 1e9 / r) as u64;
                if deadline_ns.is_some_and(|d| intended >= d) {
                    break;
                }
                wait_until(&producer, intended);
                counters
                    .max_lag_ns
                    .fetch_max(now_ns().saturating_sub(intended), Relaxed);
                intended
            }
            None => {
                let now = now_ns();
                if deadline_ns.is_some_and(|d| now >= d) {
                    break;
                }
                now
            }
        };
        buf[8..16].copy_from_slice(&seq.to_le_bytes());
        buf[16..24].copy_from_slice(&stamp.to_le_bytes());
        let partition = ((seq + i as u64) % parts) as i32;
        let mut record = BaseRecord::with_opaque_to(topic, stamp as usize)
            .payload(&buf[..])
            .partition(partition);
        loop {
            match producer.send::<[u8], [u8]>(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // librdkafka's queue is full: serve delivery reports until there is room.
                    record = r;
                    producer.poll(Duration::from_millis(1));
                    if counters.abort.load(Relaxed) {
                        break 'send;
                    }
                }
                Err((e, _)) => {
                    counters.error(format!("send failed: {e}"));
                    counters.failed.fetch_add(1, Relaxed);
                    break;
                }
            }
        }
        counters.sent.fetch_add(1, Relaxed);
        seq += 1;
        producer.poll(Duration::ZERO);
    }
    if let Err(e) = producer.flush(env.timeout) {
        counters.error(format!("flush of producer {i} failed: {e}"));
    }
    let ctx = producer.context();
    let hist = ctx
        .hist
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| new_histogram());
    let batches = ctx.batches.lock().map(|b| *b).unwrap_or((0, 0));
    Ok(ProducerOutcome { hist, batches })
}

/// Runs the producers from a common start; returns the start time (ns) and their outcomes.
/// Afterwards the live consumers' target is the number of acknowledged messages.
fn produce_phase(
    spec: &Spec,
    env: &Env,
    topic: &str,
    counters: &Arc<Counters>,
    total: Option<u64>,
) -> Result<(u64, Vec<ProducerOutcome>)> {
    let n = spec.producers;
    let line = StartLine {
        ready: Barrier::new(n + 1),
        go: Barrier::new(n + 1),
        start_ns: AtomicU64::new(0),
    };
    let result = thread::scope(|s| -> Result<(u64, Vec<ProducerOutcome>)> {
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let quota = total.map(|t| t / n as u64 + u64::from((i as u64) < t % n as u64));
            let counters = Arc::clone(counters);
            let line = &line;
            handles.push(s.spawn(move || run_producer(i, spec, env, topic, counters, quota, line)));
        }
        line.ready.wait();
        let start_ns = now_ns() + 1_000_000; // 1 ms from now, the same for every producer
        line.start_ns.store(start_ns, Relaxed);
        line.go.wait();
        let mut outcomes = Vec::with_capacity(n);
        let mut err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(o)) => outcomes.push(o),
                Ok(Err(e)) => err = Some(e),
                Err(_) => err = Some(anyhow!("a producer thread panicked")),
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok((start_ns, outcomes)),
        }
    });
    if result.is_err() {
        counters.abort.store(true, Relaxed);
    }
    counters
        .consume_target
        .store(counters.acked.load(Relaxed), Relaxed);
    result
}

// ---------------------------------------------------------------------------------------------
// consumers
// ---------------------------------------------------------------------------------------------

struct ConsumerCtx {
    counters: Arc<Counters>,
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_rdkafka(level, fac, msg);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.counters.error(format!("consumer: {error}: {reason}"));
    }
}

impl ConsumerContext for ConsumerCtx {}

struct ConsumerOutcome {
    consumed: u64,
    bytes: u64,
    first_ns: Option<u64>,
    last_ns: u64,
    e2e: Histogram<u64>,
    out_of_order: u64,
    gaps: u64,
    foreign: u64,
}

#[allow(clippy::too_many_arguments)]
fn run_consumer(
    c: usize,
    spec: &Spec,
    env: &Env,
    topic: &str,
    group_id: &str,
    counters: Arc<Counters>,
    ready: mpsc::Sender<()>,
    measure_e2e: bool,
) -> Result<ConsumerOutcome> {
    let mut cfg = client_config();
    cfg.set("bootstrap.servers", &env.bootstrap)
        .set("client.id", format!("chronik-bench-c{c}"))
        .set("group.id", group_id)
        .set("enable.auto.commit", spec.group.to_string())
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    for (k, v) in &env.consumer_props {
        cfg.set(k, v);
    }
    let consumer: BaseConsumer<ConsumerCtx> = cfg
        .create_with_context(ConsumerCtx {
            counters: Arc::clone(&counters),
        })
        .context("cannot create the consumer")?;
    let parts = spec.partitions as usize;
    // Learn the partitions' leader first: librdkafka assigned a partition whose leader it does
    // not know yet retries the start offset lookup only after 500 ms, which would show up as a
    // 0.5 s stall at the start of every end-to-end latency measurement.
    consumer
        .fetch_metadata(Some(topic), env.timeout)
        .context("consumer cannot fetch metadata")?;
    if spec.group {
        consumer.subscribe(&[topic])?;
    } else {
        let n = spec.consumers.min(parts);
        let mut tpl = TopicPartitionList::new();
        for p in (c..parts).step_by(n) {
            tpl.add_partition_offset(topic, p as i32, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
    }
    let mut out = ConsumerOutcome {
        consumed: 0,
        bytes: 0,
        first_ns: None,
        last_ns: 0,
        e2e: new_histogram(),
        out_of_order: 0,
        gaps: 0,
        foreign: 0,
    };
    // Per (producer, partition): the last sequence number seen.
    let mut last_seq: Vec<i64> = vec![-1; spec.producers * parts];
    let mut is_ready = !spec.group;
    if is_ready {
        let _ = ready.send(());
    }
    let mut last_progress = Instant::now();
    loop {
        if counters.abort.load(Relaxed) {
            break;
        }
        let target = counters.consume_target.load(Relaxed);
        if counters.consumed.load(Relaxed) >= target {
            break;
        }
        if target != u64::MAX && last_progress.elapsed() >= env.idle_timeout {
            break; // producers are done and nothing arrived for a while
        }
        let msg = match consumer.poll(Duration::from_millis(100)) {
            None => {
                if !is_ready
                    && consumer
                        .assignment()
                        .map(|a| a.count() > 0)
                        .unwrap_or(false)
                {
                    is_ready = true;
                    let _ = ready.send(());
                }
                continue;
            }
            Some(Err(e)) => {
                counters.error(format!("consumer {c}: {e}"));
                continue;
            }
            Some(Ok(m)) => m,
        };
        let now = now_ns();
        last_progress = Instant::now();
        if !is_ready {
            is_ready = true;
            let _ = ready.send(());
        }
        let payload = msg.payload().unwrap_or(&[]);
        if payload.len() >= 4 && payload[0..4] == WARMUP_MAGIC {
            continue;
        }
        out.consumed += 1;
        out.bytes += payload.len() as u64;
        out.first_ns.get_or_insert(now);
        out.last_ns = now;
        counters.consumed.fetch_add(1, Relaxed);
        if payload.len() < HEADER_BYTES || payload[0..4] != MAGIC {
            out.foreign += 1;
            continue;
        }
        let word = |r: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b[..r.len()].copy_from_slice(&payload[r]);
            u64::from_le_bytes(b)
        };
        let producer = word(4..8) as usize;
        let seq = word(8..16) as i64;
        let sent = word(16..24);
        let p = msg.partition() as usize;
        if producer >= spec.producers || p >= parts {
            out.foreign += 1;
            continue;
        }
        let slot = &mut last_seq[producer * parts + p];
        if seq <= *slot {
            out.out_of_order += 1;
        } else {
            let expected = if *slot < 0 {
                ((p + parts - producer % parts) % parts) as i64
            } else {
                *slot + parts as i64
            };
            if seq != expected {
                out.gaps += 1;
            }
            *slot = seq;
        }
        if measure_e2e {
            out.e2e
                .saturating_record((now.saturating_sub(sent) / 1_000).max(1));
        }
    }
    Ok(out)
}

/// Runs `n` consumers until `counters.consume_target` messages are consumed (or the idle
/// timeout); `on_ready` is called once every consumer has its partitions.
fn consume_phase(
    spec: &Spec,
    env: &Env,
    topic: &str,
    group_id: &str,
    counters: &Arc<Counters>,
    measure_e2e: bool,
    on_ready: impl FnOnce() -> Result<()>,
) -> Result<(Vec<ConsumerOutcome>, Result<()>)> {
    let n = if spec.group {
        spec.consumers
    } else {
        spec.consumers.min(spec.partitions as usize)
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|c| {
                let counters = Arc::clone(counters);
                let ready = ready_tx.clone();
                thread::Builder::new()
                    .name(format!("consumer-{c}"))
                    .spawn_scoped(s, move || {
                        run_consumer(c, spec, env, topic, group_id, counters, ready, measure_e2e)
                    })
            })
            .collect::<std::io::Result<_>>()?;
        drop(ready_tx);
        let deadline = Instant::now() + env.timeout;
        let mut got = 0;
        let mut waited: Result<()> = Ok(());
        while got < n {
            match ready_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(()) => got += 1,
                Err(RecvTimeoutError::Timeout) => {
                    waited = Err(anyhow!("consumers not assigned within {:?}", env.timeout));
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    waited = Err(anyhow!("a consumer stopped before it was ready"));
                    break;
                }
            }
        }
        let body = match waited {
            Ok(()) => on_ready(),
            Err(e) => Err(e),
        };
        if body.is_err() {
            counters.abort.store(true, Relaxed);
        }
        let mut outs = Vec::new();
        for h in handles {
            match h.join() {
                Ok(Ok(o)) => outs.push(o),
                Ok(Err(e)) => {
                    counters.abort.store(true, Relaxed);
                    return Err(e);
                }
                Err(_) => bail!("a consumer thread panicked"),
            }
        }
        Ok((outs, body))
    })
}

fn summarize_consume(
    outs: &[ConsumerOutcome],
    start_ns: u64,
    expected: u64,
    measure_e2e: bool,
    errors: Vec<String>,
) -> ConsumeResult {
    let consumed: u64 = outs.iter().map(|o| o.consumed).sum();
    let bytes: u64 = outs.iter().map(|o| o.bytes).sum();
    let last = outs.iter().map(|o| o.last_ns).max().unwrap_or(start_ns);
    let first = outs.iter().filter_map(|o| o.first_ns).min();
    let secs = (last.saturating_sub(start_ns) as f64 / 1e9).max(1e-9);
    let mut e2e = new_histogram();
    for o in outs {
        let _ = e2e.add(&o.e2e);
    }
    let out_of_order = outs.iter().map(|o| o.out_of_order).sum();
    let gaps = outs.iter().map(|o| o.gaps).sum();
    let foreign = outs.iter().map(|o| o.foreign).sum();
    ConsumeResult {
        consumers: outs.len(),
        consumed,
        seconds: round(secs, 3),
        msgs_per_s: round(consumed as f64 / secs, 0),
        mb_per_s: round(bytes as f64 / secs / MB, 1),
        first_message_s: first.map(|f| round(f.saturating_sub(start_ns) as f64 / 1e9, 3)),
        end_to_end: measure_e2e.then(|| LatencySummary::from_micros(&e2e)),
        out_of_order,
        gaps,
        foreign,
        complete: consumed >= expected,
        errors,
    }
}

// ---------------------------------------------------------------------------------------------
// topic administration
// ---------------------------------------------------------------------------------------------

fn admin(env: &Env) -> Result<AdminClient<DefaultClientContext>> {
    client_config()
        .set("bootstrap.servers", &env.bootstrap)
        .create()
        .context("cannot create the admin client")
}

fn delete_topic(admin: &AdminClient<DefaultClientContext>, name: &str) -> Result<bool> {
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let res = futures_executor::block_on(admin.delete_topics(&[name], &opts))?;
    match res.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))) | None => Ok(false),
        Some(Err((t, e))) => bail!("cannot delete topic {t}: {e}"),
    }
}

/// Deletes `name` if it exists, creates it with `partitions` partitions and waits (bounded)
/// until the metadata shows every partition with a leader.
pub fn fresh_topic(env: &Env, name: &str, partitions: i32) -> Result<()> {
    let admin = admin(env)?;
    delete_topic(&admin, name)?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let topic = NewTopic::new(
            name,
            partitions,
            TopicReplication::Fixed(env.replication_factor),
        );
        let res = futures_executor::block_on(admin.create_topics(&[topic], &opts))?;
        match res.into_iter().next() {
            Some(Ok(_)) => break,
            // A deletion the server has not finished yet: try again (bounded).
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(200));
            }
            Some(Err((t, e))) => bail!("cannot create topic {t}: {e}"),
            None => bail!("create_topics returned nothing for {name}"),
        }
    }
    loop {
        let md = admin
            .inner()
            .fetch_metadata(Some(name), Duration::from_secs(10))?;
        let ok = md.topics().iter().any(|t| {
            t.name() == name
                && t.error().is_none()
                && t.partitions().len() == partitions as usize
                && t.partitions()
                    .iter()
                    .all(|p| p.leader() >= 0 && p.error().is_none())
        });
        if ok {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("topic {name} never showed {partitions} partitions with leaders");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

pub fn drop_topic(env: &Env, name: &str) -> Result<()> {
    delete_topic(&admin(env)?, name).map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// progress line
// ---------------------------------------------------------------------------------------------

fn progress(
    label: &str,
    counters: &Counters,
    value_bytes: usize,
    interval: Duration,
    stop: mpsc::Receiver<()>,
) {
    let start = Instant::now();
    let (mut prev_acked, mut prev_consumed, mut prev_t) = (0u64, 0u64, start);
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let now = Instant::now();
        let dt = now.duration_since(prev_t).as_secs_f64().max(1e-9);
        let sent = counters.sent.load(Relaxed);
        let acked = counters.acked.load(Relaxed);
        let failed = counters.failed.load(Relaxed);
        let consumed = counters.consumed.load(Relaxed);
        let ack_rate = (acked - prev_acked) as f64 / dt;
        let con_rate = consumed.saturating_sub(prev_consumed) as f64 / dt;
        let lag = counters.max_lag_ns.load(Relaxed);
        if sent == 0 {
            eprintln!(
                "  [{label}] {:5.1} s  waiting for the consumers' partitions and the producers' connections",
                now.duration_since(start).as_secs_f64()
            );
            prev_t = now;
            continue;
        }
        eprintln!(
            "  [{label}] {:5.1} s  acked {acked:>10} ({ack_rate:>9.0} msg/s {:7.1} MB/s)  consumed {consumed:>10} ({con_rate:>9.0} msg/s)  in flight {:>7}  failed {failed}{}",
            now.duration_since(start).as_secs_f64(),
            ack_rate * value_bytes as f64 / MB,
            sent.saturating_sub(acked + failed),
            if lag > 0 {
                format!("  max schedule lag {:.1} ms", lag as f64 / 1e6)
            } else {
                String::new()
            }
        );
        (prev_acked, prev_consumed, prev_t) = (acked, consumed, now);
    }
}

// ---------------------------------------------------------------------------------------------
// one workload
// ---------------------------------------------------------------------------------------------

pub fn run(spec: &Spec, env: &Env) -> Result<RunResult> {
    if spec.value_bytes < HEADER_BYTES {
        bail!("--value-bytes must be at least {HEADER_BYTES} (the timestamp header)");
    }
    if spec.partitions < 1 || spec.producers < 1 {
        bail!("partitions and producers must be at least 1");
    }
    if spec.group && spec.consumers > spec.partitions as usize {
        bail!("--group with more consumers than partitions leaves consumers without partitions");
    }
    let total = match (spec.messages, spec.duration_s, spec.rate) {
        (Some(m), _, _) => Some(m),
        (None, Some(d), Some(r)) => Some((d * r).round().max(1.0) as u64),
        (None, Some(_), None) => None,
        (None, None, _) => bail!("give --messages or --duration-s"),
    };
    let topic = env.topic.clone();
    eprintln!("==> {}: topic {topic}", spec.label);
    fresh_topic(env, &topic, spec.partitions)?;
    let started_utc = crate::sys::utc_now();

    let counters = Counters::new();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let progress_thread = {
        let label = spec.label.clone();
        let c = Arc::clone(&counters);
        let (vb, iv) = (spec.value_bytes, env.progress_interval);
        thread::Builder::new()
            .name("progress".into())
            .spawn(move || progress(&label, &c, vb, iv, stop_rx))?
    };
    let metrics0 = env.metrics_url.as_deref().and_then(scrape_metrics);
    let cpu0 = CpuSnap::take(env.server_pid);
    let phase = if spec.consumers > 0 {
        let mut produced = None;
        consume_phase(
            spec,
            env,
            &topic,
            &format!("{topic}-live"),
            &counters,
            true,
            || {
                produced = Some(produce_phase(spec, env, &topic, &counters, total)?);
                Ok(())
            },
        )
        .and_then(|(outs, body)| {
            body?;
            let p = produced.ok_or_else(|| anyhow!("producers did not run"))?;
            Ok((p, Some(outs)))
        })
    } else {
        produce_phase(spec, env, &topic, &counters, total).map(|p| (p, None))
    };
    let _ = stop_tx.send(());
    let _ = progress_thread.join();
    let ((start_ns, outcomes), consumer_outs) = phase?;
    let cpu = CpuSnap::take(env.server_pid).since(&cpu0);
    let metrics1 = env.metrics_url.as_deref().and_then(scrape_metrics);
    let server = match (&metrics0, &metrics1) {
        (Some(a), Some(b)) => Some(server_counters(a, b)),
        _ => None,
    };

    // produce summary
    let acked = counters.acked.load(Relaxed);
    let last_ack = counters.last_ack_ns.load(Relaxed).max(start_ns);
    let secs = (last_ack.saturating_sub(start_ns) as f64 / 1e9).max(1e-9);
    let mut hist = new_histogram();
    let (mut bcnt, mut bsum) = (0i64, 0i64);
    for o in &outcomes {
        let _ = hist.add(&o.hist);
        bcnt += o.batches.0;
        bsum += o.batches.1;
    }
    let errors = counters
        .errors
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    let produce = ProduceResult {
        sent: counters.sent.load(Relaxed),
        acked,
        failed: counters.failed.load(Relaxed),
        seconds: round(secs, 3),
        msgs_per_s: round(acked as f64 / secs, 0),
        mb_per_s: round(acked as f64 * spec.value_bytes as f64 / secs / MB, 1),
        latency: LatencySummary::from_micros(&hist),
        max_schedule_lag_ms: spec
            .rate
            .map(|_| round(counters.max_lag_ns.load(Relaxed) as f64 / 1e6, 3)),
        client_avg_batch_bytes: (bcnt > 0).then(|| round(bsum as f64 / bcnt as f64, 0)),
        errors,
    };
    let consume_live = consumer_outs
        .as_deref()
        .map(|outs| summarize_consume(outs, start_ns, acked, true, Vec::new()));
    print_phase_summary(spec, &produce, consume_live.as_ref());

    // read-back: fresh consumers read the whole topic from the beginning
    let mut read_back = None;
    let mut cpu_read_back = None;
    let mut server_read_back = None;
    if spec.read_back && acked > 0 {
        let rb_spec = Spec {
            consumers: spec.consumers.max(1),
            ..spec.clone()
        };
        let rb = Counters::new();
        rb.consume_target.store(acked, Relaxed);
        let m0 = env.metrics_url.as_deref().and_then(scrape_metrics);
        let c0 = CpuSnap::take(env.server_pid);
        let mut rb_start = now_ns();
        let (outs, body) = consume_phase(
            &rb_spec,
            env,
            &topic,
            &format!("{topic}-read-back"),
            &rb,
            false,
            || {
                rb_start = now_ns();
                Ok(())
            },
        )?;
        body?;
        cpu_read_back = Some(CpuSnap::take(env.server_pid).since(&c0));
        let m1 = env.metrics_url.as_deref().and_then(scrape_metrics);
        if let (Some(a), Some(b)) = (&m0, &m1) {
            server_read_back = Some(server_counters(a, b));
        }
        let errs = rb.errors.lock().map(|e| e.clone()).unwrap_or_default();
        // Throughput from the first message to the last: the start-up (offset lookup, first
        // fetch) is in first_message_s, not in the rate.
        let first = outs
            .iter()
            .filter_map(|o| o.first_ns)
            .min()
            .unwrap_or(rb_start);
        let mut r = summarize_consume(&outs, first, acked, false, errs);
        r.first_message_s = Some(round(first.saturating_sub(rb_start) as f64 / 1e9, 3));
        eprintln!(
            "  read-back: {} msgs in {:.2} s: {:.0} msg/s {:.1} MB/s{}",
            r.consumed,
            r.seconds,
            r.msgs_per_s,
            r.mb_per_s,
            if r.complete { "" } else { "  INCOMPLETE" }
        );
        read_back = Some(r);
    }
    if !env.keep_topic {
        if let Err(e) = drop_topic(env, &topic) {
            eprintln!("  warning: cannot delete topic {topic}: {e}");
        }
    }
    Ok(RunResult {
        spec: spec.clone(),
        topic,
        started_utc,
        produce,
        consume_live,
        read_back,
        cpu,
        cpu_read_back,
        server,
        server_read_back,
        disk_ratio: None,
    })
}

fn print_phase_summary(spec: &Spec, p: &ProduceResult, c: Option<&ConsumeResult>) {
    let l = &p.latency;
    eprintln!(
        "  produced {} acked ({} failed) in {:.2} s: {:.0} msg/s {:.1} MB/s  latency p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} ms{}",
        p.acked,
        p.failed,
        p.seconds,
        p.msgs_per_s,
        p.mb_per_s,
        l.p50_ms,
        l.p99_ms,
        l.p999_ms,
        l.max_ms,
        match (spec.rate, p.max_schedule_lag_ms) {
            (Some(_), Some(lag)) => format!("  (max schedule lag {lag:.1} ms)"),
            _ => String::new(),
        }
    );
    if let Some(c) = c {
        let e = c.end_to_end.clone().unwrap_or_default();
        eprintln!(
            "  consumed {} live: {:.0} msg/s {:.1} MB/s  end-to-end p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} ms{}{}",
            c.consumed,
            c.msgs_per_s,
            c.mb_per_s,
            e.p50_ms,
            e.p99_ms,
            e.p999_ms,
            e.max_ms,
            if c.complete { "" } else { "  INCOMPLETE" },
            if c.out_of_order + c.gaps + c.foreign > 0 {
                format!(
                    "  out-of-order {} gaps {} foreign {}",
                    c.out_of_order, c.gaps, c.foreign
                )
            } else {
                String::new()
            }
        );
    }
}
