//! One simulated run: a partition's Raft group of 3 or 5 real replicas on virtual time, a
//! workload of acks=all writes, seeded faults (crashes that lose unsynced data, restarts,
//! partitions, lossy/duplicating/reordering links), then healing, convergence and the checks.

use crate::checkers::{self, FinalLogs};
use crate::history::{History, Outcome};
use crate::network::{NetConditions, SimNetwork};
use crate::replica::{SimError, SimReplica};
use bytes::Bytes;
use chronik_replication::log_store::PlantedBug;
use chronik_replication::types::{NodeId, NotAppended, Raft};
use chronik_replication::{Applied, RecordBatch};
use chronik_storage::batch_builder;
use chronik_storage::config::LogConfig;
use openraft::error::{InitializeError, RaftError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Virtual time between two steps of the driver.
const STEP_MS: u64 = 10;
/// How long a write may wait for its commit before it counts as unknown.
const WRITE_TIMEOUT_MS: u64 = 3_000;
/// After the faults stop: the bound within which a leader must commit a write (liveness).
const LIVENESS_BOUND_MS: u64 = 30_000;
/// Retention runs (even seeds): small segments, a few of them kept, retention every so often
/// on every running replica (snapshots, purges, followers starting over from a snapshot).
const RETENTION_SEGMENT_BYTES: i64 = 1024;
const RETENTION_BYTES: i64 = 4 * 1024;
const RETENTION_EVERY_MS: u64 = 500;

fn log_config(retention: bool) -> LogConfig {
    if retention {
        LogConfig {
            segment_bytes: RETENTION_SEGMENT_BYTES,
            retention_bytes: RETENTION_BYTES,
            ..LogConfig::default()
        }
    } else {
        LogConfig::default()
    }
}

/// One retention round on every running replica.
async fn retention_round(replicas: &[SimReplica], history: &SharedHistory, t: u64) {
    for r in replicas {
        let Some(run) = &r.running else { continue };
        let purged = chronik_replication::retention::apply(&run.raft, &run.replica, 0).await;
        if let Ok(Some(index)) = purged {
            lock(history).event(t, format!("retention {} purges up to {index}", r.id));
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub seed: u64,
    /// Virtual duration of the fault phase.
    pub duration_ms: u64,
    pub planted: Option<PlantedBug>,
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub seed: u64,
    pub nodes: usize,
    pub trace_hash: u64,
    pub writes: usize,
    pub acked: usize,
    pub faults: usize,
    pub violations: Vec<String>,
    /// Every event of the run with its virtual time.
    pub trace: Vec<String>,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs one seed to completion on a fresh single-threaded runtime with paused (virtual) time,
/// on a fresh thread: tokio's `select!` draws from thread-local randomness, which must start
/// the same for every run of a seed.
pub fn run(config: &RunConfig) -> Result<RunResult, SimError> {
    let config = config.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()?;
        rt.block_on(run_async(&config))
    })
    .join()
    .map_err(|_| SimError::from("the simulation thread panicked"))?
}

type SharedHistory = Arc<Mutex<History>>;

fn lock(h: &SharedHistory) -> std::sync::MutexGuard<'_, History> {
    h.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms(start: tokio::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn batch_for(id: u64) -> RecordBatch {
    let value = id.to_be_bytes();
    RecordBatch(Bytes::from(batch_builder::uncompressed_batch(
        1,
        1_700_000_000_000,
        &value,
    )))
}

/// Write ids of the idempotent producer start here (its sequence number is `id - base`).
pub const IDEMPOTENT_ID_BASE: u64 = 1 << 40;
const IDEMPOTENT_PRODUCER_ID: i64 = 7;

fn idempotent_batch(seq: u64) -> RecordBatch {
    let id = IDEMPOTENT_ID_BASE + seq;
    let producer = batch_builder::Producer {
        id: IDEMPOTENT_PRODUCER_ID,
        epoch: 0,
        base_sequence: i32::try_from(seq).unwrap_or(i32::MAX),
    };
    RecordBatch(Bytes::from(batch_builder::producer_batch(
        producer,
        1,
        1_700_000_000_000,
        &id.to_be_bytes(),
    )))
}

/// An idempotent producer that sends one batch at a time and retries a batch whose outcome is
/// unknown (same sequence number) until it is acknowledged: retries must never duplicate.
fn spawn_idempotent_producer(
    replicas: Arc<Mutex<Vec<Option<Raft>>>>,
    history: SharedHistory,
    start: tokio::time::Instant,
    until_ms: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seq = 0u64;
        while now_ms(start) < until_ms {
            let leader = replicas
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .flatten()
                .find(|r| r.metrics().borrow().state.is_leader())
                .cloned();
            let Some(leader) = leader else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let id = IDEMPOTENT_ID_BASE + seq;
            lock(&history).writes.entry(id).or_insert(None);
            let write = tokio::time::timeout(
                Duration::from_millis(WRITE_TIMEOUT_MS),
                leader.client_write(idempotent_batch(seq)),
            )
            .await;
            let t = now_ms(start);
            let acked = match write {
                Ok(Ok(resp)) => match resp.data {
                    Applied::Batch { base_offset, .. }
                    | Applied::NotAppended(NotAppended::Duplicate { base_offset, .. }) => {
                        Some(base_offset)
                    }
                    _ => None,
                },
                _ => None,
            };
            {
                let mut h = lock(&history);
                match acked {
                    Some(offset) => {
                        h.writes.insert(id, Some(Outcome::Acked(offset)));
                        h.event(t, format!("idempotent ack {id} at {offset}"));
                        seq += 1;
                    }
                    None => {
                        h.writes.insert(id, Some(Outcome::Unknown));
                        h.event(t, format!("idempotent {id} unknown: retry"));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

fn value_ids(batch: &[u8]) -> Vec<u64> {
    batch_builder::record_values(batch)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes))
        .collect()
}

/// The running node that says it leads, if any (the lowest id, to stay deterministic).
fn a_leader(replicas: &[SimReplica]) -> Option<Raft> {
    replicas.iter().find_map(|r| {
        r.running
            .as_ref()
            .filter(|run| run.raft.metrics().borrow().state.is_leader())
            .map(|run| run.raft.clone())
    })
}

async fn run_async(config: &RunConfig) -> Result<RunResult, SimError> {
    let start = tokio::time::Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let net = SimNetwork::new(ChaCha8Rng::seed_from_u64(
        config.seed.wrapping_mul(0x9E37_79B9),
    ));
    let n = if rng.gen_bool(0.5) { 3 } else { 5 };
    // Not drawn from `rng`: the other seeds run as before.
    let retention = config.seed.is_multiple_of(2);
    let shape = Shape {
        nodes: n,
        retention,
    };
    let dir = tempfile::tempdir()?;
    let mut replicas: Vec<SimReplica> = (0..n)
        .map(|i| {
            SimReplica::new(
                i as NodeId + 1,
                i as u64,
                dir.path().join(format!("r{i}")),
                log_config(retention),
            )
        })
        .collect();
    let ids: Vec<NodeId> = replicas.iter().map(|r| r.id).collect();
    let history: SharedHistory = Arc::default();
    for r in &mut replicas {
        r.start(&net, config.planted).await?;
    }
    for r in &replicas {
        if let Some(run) = &r.running {
            match run
                .raft
                .initialize(ids.iter().copied().collect::<BTreeSet<_>>())
                .await
            {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    lock(&history).event(
        0,
        format!(
            "start {n} replicas, seed {}, retention {retention}",
            config.seed
        ),
    );

    // Fault phase.
    let mut next_id = 0u64;
    let live: Arc<Mutex<Vec<Option<Raft>>>> = Arc::default();
    let publish_live = |replicas: &[SimReplica]| {
        *live.lock().unwrap_or_else(PoisonError::into_inner) = replicas
            .iter()
            .map(|r| r.running.as_ref().map(|run| run.raft.clone()))
            .collect();
    };
    publish_live(&replicas);
    // In retention runs too: its batches are deleted with their segments and its state must
    // live on, the same on every replica (producer-state files and snapshots).
    let idempotent = spawn_idempotent_producer(
        Arc::clone(&live),
        Arc::clone(&history),
        start,
        config.duration_ms,
    );
    let mut next_retention = RETENTION_EVERY_MS;
    while now_ms(start) < config.duration_ms {
        let t = now_ms(start);
        if retention && t >= next_retention {
            retention_round(&replicas, &history, t).await;
            next_retention = t + RETENTION_EVERY_MS;
        }
        if rng.gen_bool(0.3) {
            if let Some(leader) = a_leader(&replicas) {
                next_id += 1;
                spawn_write(leader, next_id, Arc::clone(&history), start);
            }
        }
        if rng.gen_bool(0.01) {
            inject_fault(
                &mut rng,
                &mut replicas,
                &net,
                &ids,
                &history,
                t,
                config.planted,
            )
            .await?;
        }
        observe(&replicas, &history);
        publish_live(&replicas);
        tokio::time::sleep(Duration::from_millis(STEP_MS)).await;
    }
    let _ = idempotent.await;

    // Heal, restart everyone, and require progress within the bound.
    net.heal();
    for r in &mut replicas {
        if r.running.is_none() {
            if let Err(e) = r.start(&net, config.planted).await {
                lock(&history)
                    .refused
                    .push(format!("replica {} refused to restart: {e}", r.id));
            }
        }
    }
    lock(&history).event(now_ms(start), "heal: all up, network calm".into());
    let mut violations = Vec::new();
    let deadline = now_ms(start) + LIVENESS_BOUND_MS;
    let mut final_index = None;
    while final_index.is_none() && now_ms(start) < deadline {
        observe(&replicas, &history);
        if let Some(leader) = a_leader(&replicas) {
            next_id += 1;
            let id = next_id;
            lock(&history).writes.insert(id, None);
            let write = tokio::time::timeout(
                Duration::from_millis(WRITE_TIMEOUT_MS),
                leader.client_write(batch_for(id)),
            )
            .await;
            if let Ok(Ok(resp)) = write {
                if let Applied::Batch { base_offset, .. } = resp.data {
                    lock(&history)
                        .writes
                        .insert(id, Some(Outcome::Acked(base_offset)));
                    final_index = Some(resp.log_id.index);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(final_index) = final_index else {
        violations.push(format!(
            "liveness: no write committed within {LIVENESS_BOUND_MS} ms after the faults stopped"
        ));
        return finish(config, shape, &history, violations, &mut replicas, &net).await;
    };
    // Every replica catches up with that write.
    for r in &replicas {
        if let Some(run) = &r.running {
            let caught_up = run
                .raft
                .wait(Some(Duration::from_millis(LIVENESS_BOUND_MS)))
                .applied_index_at_least(Some(final_index), "caught up")
                .await;
            if caught_up.is_err() {
                violations.push(format!(
                    "liveness: replica {} did not apply entry {final_index} within {LIVENESS_BOUND_MS} ms",
                    r.id
                ));
            }
        }
    }
    observe(&replicas, &history);
    finish(config, shape, &history, violations, &mut replicas, &net).await
}

/// What a seed decided about a run's setup.
#[derive(Debug, Clone, Copy)]
struct Shape {
    nodes: usize,
    retention: bool,
}

async fn finish(
    config: &RunConfig,
    Shape {
        nodes: n,
        retention,
    }: Shape,
    history: &SharedHistory,
    mut violations: Vec<String>,
    replicas: &mut [SimReplica],
    net: &SimNetwork,
) -> Result<RunResult, SimError> {
    let mut logs = FinalLogs {
        replicas: Vec::new(),
        retention,
    };
    for r in replicas.iter().filter(|r| r.running.is_some()) {
        let batches = r
            .batches()?
            .into_iter()
            .map(|(base, bytes)| (base, value_ids(&bytes)))
            .collect();
        logs.replicas.push((r.id, batches));
    }
    let result = {
        let h = lock(history);
        // A replica that will not start (its recovery found committed entries missing) is a
        // finding in itself.
        violations.extend(h.refused.iter().cloned());
        violations.extend(checkers::acked_not_lost::check(&h, &logs));
        violations.extend(checkers::no_duplicates::check(&logs));
        violations.extend(checkers::identical_logs::check(&logs));
        violations.extend(checkers::log_start::check(&logs));
        violations.extend(checkers::offsets_contiguous::check(&logs));
        violations.extend(checkers::high_watermark_monotonic::check(&h));
        violations.extend(checkers::one_leader_per_term::check(&h));
        RunResult {
            seed: config.seed,
            nodes: n,
            trace_hash: h.trace_hash(),
            writes: h.writes.len(),
            acked: h.acked().count(),
            faults: h.faults,
            violations,
            trace: h.trace.clone(),
        }
    };
    for r in replicas.iter_mut() {
        net.down(r.id);
        if let Some(run) = r.running.take() {
            let _ = run.raft.shutdown().await;
        }
    }
    Ok(result)
}

fn spawn_write(leader: Raft, id: u64, history: SharedHistory, start: tokio::time::Instant) {
    lock(&history).writes.insert(id, None);
    tokio::spawn(async move {
        let write = tokio::time::timeout(
            Duration::from_millis(WRITE_TIMEOUT_MS),
            leader.client_write(batch_for(id)),
        )
        .await;
        let mut h = lock(&history);
        let t = now_ms(start);
        match write {
            Ok(Ok(resp)) => match resp.data {
                Applied::Batch { base_offset, .. } => {
                    h.writes.insert(id, Some(Outcome::Acked(base_offset)));
                    h.event(t, format!("ack {id} at {base_offset}"));
                }
                other => {
                    h.writes.insert(id, Some(Outcome::Unknown));
                    h.event(t, format!("write {id} applied as {other:?}"));
                }
            },
            _ => {
                h.writes.insert(id, Some(Outcome::Unknown));
                h.event(t, format!("write {id} unknown"));
            }
        }
    });
}

async fn inject_fault(
    rng: &mut ChaCha8Rng,
    replicas: &mut [SimReplica],
    net: &SimNetwork,
    ids: &[NodeId],
    history: &SharedHistory,
    t: u64,
    planted: Option<PlantedBug>,
) -> Result<(), SimError> {
    let what = rng.gen_range(0..5);
    let i = rng.gen_range(0..replicas.len());
    let description = match what {
        0 => {
            let keep = rng.gen_range(0.0..1.0);
            let r = &mut replicas[i];
            if r.running.is_none() {
                return Ok(());
            }
            r.crash(net, keep).await?;
            format!(
                "crash {} keeping {:.0}% of unsynced bytes",
                r.id,
                keep * 100.0
            )
        }
        1 => {
            let r = &mut replicas[i];
            if r.running.is_some() {
                return Ok(());
            }
            match r.start(net, planted).await {
                Ok(()) => format!("restart {}", r.id),
                Err(e) => {
                    let mut h = lock(history);
                    h.refused
                        .push(format!("replica {} refused to restart: {e}", r.id));
                    format!("restart {} refused", r.id)
                }
            }
        }
        2 => {
            let side: BTreeSet<NodeId> =
                ids.iter().copied().filter(|_| rng.gen_bool(0.5)).collect();
            net.partition(&side, ids);
            format!("partition {side:?} from the rest")
        }
        3 => {
            let c = NetConditions {
                drop: rng.gen_range(0.0..0.3),
                duplicate: rng.gen_range(0.0..0.2),
                max_delay_ms: rng.gen_range(1..200),
            };
            net.lock().conditions = c;
            format!("network {c:?}")
        }
        _ => {
            net.heal();
            "heal network".to_string()
        }
    };
    let mut h = lock(history);
    h.faults += 1;
    h.event(t, description);
    Ok(())
}

/// Records every running node's high watermark and who leads in which term.
fn observe(replicas: &[SimReplica], history: &SharedHistory) {
    let mut h = lock(history);
    for r in replicas {
        let Some(run) = &r.running else { continue };
        if let Some(hw) = r.high_watermark() {
            let seen = h.high_watermarks.entry((r.id, r.incarnation)).or_default();
            if seen.last() != Some(&hw) {
                seen.push(hw);
            }
        }
        let m = run.raft.metrics();
        let m = m.borrow();
        if m.state.is_leader() {
            let leaders = h.leaders.entry(m.current_term).or_default();
            if !leaders.contains(&r.id) {
                leaders.push(r.id);
            }
        }
    }
}

/// The seeds `first..first + count`, with their results (for the CLI and CI).
pub fn run_seeds(
    first: u64,
    count: u64,
    duration_ms: u64,
    planted: Option<PlantedBug>,
) -> Result<Vec<RunResult>, SimError> {
    let mut out = Vec::new();
    for seed in first..first + count {
        out.push(run(&RunConfig {
            seed,
            duration_ms,
            planted,
        })?);
    }
    Ok(out)
}

/// The command that replays a seed exactly.
pub fn replay_command(seed: u64, duration_ms: u64, planted: Option<PlantedBug>) -> String {
    let plant = match planted {
        Some(PlantedBug::SkipFsync) => " --plant skip-fsync",
        Some(PlantedBug::SkipTruncate) => " --plant skip-truncate",
        None => "",
    };
    format!("cargo run --release -p chronik-sim -- --seed {seed} --duration-ms {duration_ms}{plant} --trace")
}

/// Results per node count, for reports.
pub fn summary(results: &[RunResult]) -> BTreeMap<usize, (usize, usize)> {
    let mut out: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for r in results {
        let e = out.entry(r.nodes).or_default();
        e.0 += 1;
        e.1 += usize::from(!r.passed());
    }
    out
}
