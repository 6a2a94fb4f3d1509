//! Teeth: each planted bug is caught within the first twenty seeds, and the same seeds pass
//! without it.

use chronik_replication::log_store::PlantedBug;
use chronik_sim::run_seeds;

/// The bound within which every planted bug must be caught.
const SEEDS: u64 = 20;

fn failing_seeds(
    planted: Option<PlantedBug>,
) -> Result<Vec<u64>, Box<dyn std::error::Error + Send + Sync>> {
    Ok(run_seeds(1, SEEDS, 10_000, planted)?
        .into_iter()
        .filter(|r| !r.passed())
        .map(|r| r.seed)
        .collect())
}

#[test]
fn acknowledging_without_fsync_is_caught() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let caught = failing_seeds(Some(PlantedBug::SkipFsync))?;
    assert!(
        !caught.is_empty(),
        "no seed of 1..=20 caught appends acknowledged without fsync"
    );
    Ok(())
}

#[test]
fn keeping_a_deposed_leaders_suffix_is_caught(
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let caught = failing_seeds(Some(PlantedBug::SkipTruncate))?;
    assert!(
        !caught.is_empty(),
        "no seed of 1..=20 caught a suffix that was never truncated"
    );
    Ok(())
}

#[test]
fn the_same_seeds_pass_without_a_planted_bug(
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    assert_eq!(failing_seeds(None)?, Vec::<u64>::new());
    Ok(())
}
