//! `chronik-sim`: runs seeds of the simulator and reports failures with a replay command.

use chronik_replication::log_store::PlantedBug;
use chronik_sim::{replay_command, run, RunConfig};
use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Deterministic simulation of a Chronik partition's Raft group")]
struct Cli {
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many seeds, from --seed on.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Virtual duration of each run's fault phase.
    #[arg(long, default_value_t = 10_000)]
    duration_ms: u64,
    /// TEST ONLY: plant a known bug (skip-fsync, skip-truncate) to see the checkers catch it.
    #[arg(long)]
    plant: Option<String>,
    /// Print every event of each run.
    #[arg(long)]
    trace: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let planted = match cli.plant.as_deref() {
        None => None,
        Some("skip-fsync") => Some(PlantedBug::SkipFsync),
        Some("skip-truncate") => Some(PlantedBug::SkipTruncate),
        Some(other) => {
            eprintln!("unknown --plant {other}: skip-fsync or skip-truncate");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let mut failed = 0u64;
    for seed in cli.seed..cli.seed + cli.seeds {
        let config = RunConfig {
            seed,
            duration_ms: cli.duration_ms,
            planted,
        };
        match run(&config) {
            Ok(r) => {
                if cli.trace {
                    for line in &r.trace {
                        println!("{line}");
                    }
                }
                println!(
                    "seed {seed}: {} nodes, {} writes ({} acked), {} faults, trace {:016x}: {}",
                    r.nodes,
                    r.writes,
                    r.acked,
                    r.faults,
                    r.trace_hash,
                    if r.passed() { "ok" } else { "FAILED" }
                );
                if !r.passed() {
                    failed += 1;
                    for v in &r.violations {
                        println!("  violation: {v}");
                    }
                    println!(
                        "  replay: {}",
                        replay_command(seed, cli.duration_ms, planted)
                    );
                }
            }
            Err(e) => {
                failed += 1;
                println!("seed {seed}: ERROR {e}");
                println!(
                    "  replay: {}",
                    replay_command(seed, cli.duration_ms, planted)
                );
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} seeds, {failed} failed, {secs:.1} s ({:.0} seeds/minute)",
        cli.seeds,
        cli.seeds as f64 * 60.0 / secs.max(0.001)
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
