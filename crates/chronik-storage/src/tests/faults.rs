//! The partition log under injected disk faults: failed fsyncs, a full disk, torn writes and
//! crashes that lose unsynced data; and a seeded property test of durability across random
//! sequences of them.

use super::*;
use crate::batch::tests::make_batch;
use crate::faults::{FaultPlan, FaultyFileSystem};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const NOW: i64 = 1_700_000_000_000;

fn open(fs: &FaultyFileSystem, dir: &Path) -> PartitionLog {
    PartitionLog::open_on(Arc::new(fs.clone()), dir, LogConfig::default(), 0, 0, NOW)
        .unwrap()
        .0
}

fn batch(i: usize) -> Vec<u8> {
    make_batch(0, 2, NOW + i as i64, format!("value-{i}").as_bytes())
}

/// What `fsync` does in the broker: sync the active file and, if that worked, move the HW.
fn flush(log: &mut PartitionLog) -> std::io::Result<()> {
    if let Some(t) = log.sync_target().unwrap() {
        t.file.sync_data()?;
        log.mark_flushed(t.upto);
    }
    Ok(())
}

fn all_batches(log: &PartitionLog) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let slice = log.read_slice(offset).unwrap().unwrap();
        let data = read_batches(&slice, log.high_watermark(), 1 << 20, true).unwrap();
        for (pos, h) in batch::split_and_validate(&data).unwrap() {
            let mut b = data[pos..pos + h.size_bytes()].to_vec();
            b[..8].copy_from_slice(&0i64.to_be_bytes()); // compare as the producer sent it
            out.push(b);
            offset = h.next_offset();
        }
    }
    out
}

#[test]
fn a_failed_fsync_is_an_error_and_never_moves_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let mut log = open(&fs, dir.path());
    log.append(&mut batch(0), NOW).unwrap();
    fs.set_plan(FaultPlan {
        fail_syncs: true,
        ..FaultPlan::default()
    });
    assert_eq!(flush(&mut log).unwrap_err().raw_os_error(), Some(5));
    assert_eq!(log.high_watermark(), 0, "nothing unsynced becomes visible");
}

#[test]
fn a_full_disk_keeps_nothing_partial_and_the_log_resumes_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let mut log = open(&fs, dir.path());
    log.append(&mut batch(0), NOW).unwrap();
    flush(&mut log).unwrap();
    let size = log.size_bytes();
    fs.set_plan(FaultPlan {
        disk_full: true,
        torn_write_bytes: 30,
        ..FaultPlan::default()
    });
    let err = log.append(&mut batch(1), NOW).unwrap_err();
    assert!(matches!(err, StorageError::DiskFull(_)), "{err}");
    assert_eq!(log.size_bytes(), size);
    assert_eq!(
        std::fs::metadata(dir.path().join("00000000000000000000.log"))
            .unwrap()
            .len(),
        size,
        "the torn prefix was cut"
    );
    assert!(!log.is_offline());
    fs.set_plan(FaultPlan::default());
    let info = log.append(&mut batch(2), NOW).unwrap();
    assert_eq!(info.base_offset, 2, "offsets continue without a gap");
    flush(&mut log).unwrap();
    assert_eq!(all_batches(&log), vec![batch(0), batch(2)]);
    drop(log);
    assert_eq!(
        all_batches(&open(&FaultyFileSystem::new(), dir.path())),
        vec![batch(0), batch(2)]
    );
}

#[test]
fn a_crash_loses_exactly_the_unsynced_tail() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let mut log = open(&fs, dir.path());
    for i in 0..3 {
        log.append(&mut batch(i), NOW).unwrap();
    }
    flush(&mut log).unwrap();
    for i in 3..5 {
        log.append(&mut batch(i), NOW).unwrap();
    }
    fs.crash(|_, unsynced| unsynced / 2).unwrap(); // half of the unsynced bytes survive: a torn tail
    drop(log);
    let log = open(&FaultyFileSystem::new(), dir.path());
    let got = all_batches(&log);
    assert!(
        got.len() >= 3 && got.len() <= 4,
        "kept {} batches",
        got.len()
    );
    assert_eq!(got[..], (0..got.len()).map(batch).collect::<Vec<_>>()[..]);
}

#[derive(Debug, Clone)]
enum Op {
    Append,
    Flush,
    /// Crash keeping this fraction (per mille) of each file's unsynced bytes, then reopen.
    Crash(u64),
    /// The next append hits a full disk after writing this many bytes.
    DiskFull(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => Just(Op::Append),
        3 => Just(Op::Flush),
        1 => (0u64..=1000).prop_map(Op::Crash),
        1 => (0usize..120).prop_map(Op::DiskFull),
    ]
}

/// After every recovery the log is a prefix of what was written, and it holds every batch
/// that was acknowledged (appended before a successful flush).
#[test]
fn durability_property_across_random_faults() {
    let seed: [u8; 32] = *b"chronik-durability-property-seed";
    println!("seed: {seed:?}");
    let config = Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    runner
        .run(&proptest::collection::vec(op(), 1..60), |ops| {
            let dir = tempfile::tempdir().unwrap();
            let config = LogConfig {
                segment_bytes: 400,
                ..LogConfig::default()
            };
            let fs = FaultyFileSystem::new();
            let reopen = |fs: &FaultyFileSystem| {
                PartitionLog::open_on(Arc::new(fs.clone()), dir.path(), config.clone(), 0, 0, NOW)
                    .unwrap()
                    .0
            };
            let mut log = reopen(&fs);
            let mut written: Vec<Vec<u8>> = Vec::new();
            let mut acked = 0usize;
            for op in ops {
                match op {
                    Op::Append => {
                        let b = batch(written.len());
                        if log.append(&mut b.clone(), NOW).is_ok() {
                            written.push(b);
                        }
                        fs.set_plan(FaultPlan::default());
                    }
                    Op::Flush => {
                        flush(&mut log).unwrap();
                        acked = written.len();
                    }
                    Op::DiskFull(torn) => fs.set_plan(FaultPlan {
                        disk_full: true,
                        torn_write_bytes: torn,
                        ..FaultPlan::default()
                    }),
                    Op::Crash(per_mille) => {
                        fs.set_plan(FaultPlan::default());
                        fs.crash(|_, unsynced| unsynced * per_mille / 1000).unwrap();
                        drop(log);
                        log = reopen(&fs);
                        let got = all_batches(&log);
                        prop_assert!(
                            got.len() >= acked,
                            "lost acknowledged batches: kept {} of {acked}",
                            got.len()
                        );
                        prop_assert_eq!(
                            &got[..],
                            &written[..got.len()],
                            "not a prefix of what was written"
                        );
                        written.truncate(got.len());
                        acked = got.len();
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}
