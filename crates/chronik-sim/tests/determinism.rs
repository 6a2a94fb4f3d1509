//! One seed, one run: two runs of a seed give the same trace (every event at the same virtual
//! time), the same hash and the same verdict.

use chronik_sim::{run, RunConfig};

#[test]
fn two_runs_of_a_seed_are_identical() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // 16 and 4 are retention runs (even seeds; 4 purges within 5 s): purges, snapshots and
    // snapshot installs replay too.
    for seed in [3, 16, 4] {
        let config = RunConfig {
            seed,
            duration_ms: 5_000,
            planted: None,
        };
        let a = run(&config)?;
        let b = run(&config)?;
        assert!(
            a.faults > 0 && a.acked > 0,
            "seed {seed} did nothing: {a:?}"
        );
        assert_eq!(a.trace, b.trace, "seed {seed}: traces differ");
        assert_eq!(a.trace_hash, b.trace_hash);
        assert_eq!(a.violations, b.violations);
        assert!(a.passed(), "seed {seed}: {:?}", a.violations);
        if seed == 4 {
            assert!(
                a.trace.iter().any(|e| e.contains("purges up to")),
                "seed {seed}: retention never purged"
            );
        }
    }
    Ok(())
}
