//! Replicated (Raft) partition log tests: entries appended with the leader epoch, the high
//! watermark as the commit point, reads above it, truncation of an uncommitted suffix (within
//! and across segments, on disk and after reopen), reset to an empty log at a snapshot offset,
//! the batch walk that rebuilds the entry index, and `sync_active` durability.

use super::*;
use crate::batch::tests::make_batch;
use crate::error::BatchError;
use crate::faults::{FaultPlan, FaultyFileSystem};
use crate::segment::file_stem;

const NOW: i64 = 1_700_000_000_000;

/// Position of the CRC field in a record batch (see the layout in `batch`).
const CRC_AT: usize = 17;

fn open(dir: &Path, config: LogConfig) -> (PartitionLog, RecoveryReport) {
    PartitionLog::open(dir, config, 0, 0, NOW).unwrap()
}

/// A log in replicated mode with nothing committed.
fn open_replicated(dir: &Path, config: LogConfig) -> PartitionLog {
    let (mut log, _) = open(dir, config);
    log.set_replicated(log.log_start_offset());
    log
}

/// With 2-record batches of `value-N` (89 to 91 bytes), a segment holds 3 batches (6 offsets):
/// segments start at 0, 6, 12, 18, ...
fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    }
}

/// Batch `i` as a producer sends it: 2 records, base offset 0, leader epoch 0.
fn batch(i: usize) -> Vec<u8> {
    make_batch(0, 2, NOW + i as i64, format!("value-{i}").as_bytes())
}

/// Appends batches `from..to` as one entry each with `epoch`; returns them as stored (base
/// offset and epoch stamped in place by `append_entry`).
fn append_entries(log: &mut PartitionLog, from: usize, to: usize, epoch: i32) -> Vec<Vec<u8>> {
    (from..to)
        .map(|i| {
            let mut b = batch(i);
            log.append_entry(&mut b, epoch, NOW).unwrap();
            b
        })
        .collect()
}

/// What a replica stores for batch `i` of `append_entries` at `base` with `epoch`, built
/// independently of the log.
fn expected_stored(i: usize, base: Offset, epoch: i32) -> Vec<u8> {
    let mut b = make_batch(base, 2, NOW + i as i64, format!("value-{i}").as_bytes());
    batch::set_partition_leader_epoch(&mut b, epoch).unwrap();
    b
}

/// An idempotent producer's batch of `count` records.
fn idempotent_batch(
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    count: i32,
) -> Vec<u8> {
    let mut b = make_batch(0, count, NOW, b"idempotent");
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
    b[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = batch::compute_crc(&b).unwrap();
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    let h = batch::validate(&b).unwrap();
    assert_eq!(
        (
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.records_count
        ),
        (producer_id, producer_epoch, base_sequence, count)
    );
    b
}

/// Every stored batch, read whole through `read_batch_at`.
fn stored(log: &PartitionLog) -> Vec<Vec<u8>> {
    log.batch_locations()
        .unwrap()
        .iter()
        .map(|l| log.read_batch_at(l.base_offset).unwrap())
        .collect()
}

/// What a consumer can read (the fetch path: `read_slice` + `read_batches` up to the high
/// watermark), from the log start.
fn consumer_read(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read_slice(offset).unwrap() {
        let data = read_batches(&slice, log.high_watermark(), 1 << 20, true).unwrap();
        let batches = batch::split_and_validate(&data).unwrap();
        let Some((_, last)) = batches.last() else {
            break;
        };
        offset = last.next_offset();
        out.extend_from_slice(&data);
    }
    out
}

fn segment_path(dir: &Path, base: Offset, suffix: &str) -> PathBuf {
    dir.join(format!("{}{suffix}", file_stem(base)))
}

/// Every file in the log directory, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The three files of each segment in `bases`, sorted as `files_in` lists them.
fn segment_files(bases: &[Offset]) -> Vec<String> {
    let mut names: Vec<String> = bases
        .iter()
        .flat_map(|b| [".index", ".log", ".timeindex"].map(|s| format!("{}{s}", file_stem(*b))))
        .collect();
    names.sort();
    names
}

fn bases(log: &PartitionLog) -> Vec<Offset> {
    log.segments.keys().copied().collect()
}

fn loc(base_offset: Offset, next_offset: Offset, leader_epoch: i32) -> BatchLocation {
    BatchLocation {
        base_offset,
        next_offset,
        leader_epoch,
    }
}

/// Everything observable about a log's contents, to check an operation changed nothing.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    log_start: Offset,
    log_end: Offset,
    high_watermark: Offset,
    bases: Vec<Offset>,
    files: Vec<String>,
    locations: Vec<BatchLocation>,
    /// Each segment's `.log` file.
    file_bytes: Vec<Vec<u8>>,
    /// Each batch through `read_batch_at`.
    batches: Vec<Vec<u8>>,
}

fn snapshot(log: &PartitionLog) -> Snapshot {
    Snapshot {
        log_start: log.log_start_offset(),
        log_end: log.log_end_offset(),
        high_watermark: log.high_watermark(),
        bases: bases(log),
        files: files_in(log.dir()),
        locations: log.batch_locations().unwrap(),
        file_bytes: bases(log)
            .iter()
            .map(|b| std::fs::read(segment_path(log.dir(), *b, ".log")).unwrap())
            .collect(),
        batches: stored(log),
    }
}

/// Checks `log` against `before` field by field (so a failure names what changed without
/// printing every byte).
fn assert_unchanged(log: &PartitionLog, before: &Snapshot, context: &str) {
    let now = snapshot(log);
    let offsets = |s: &Snapshot| (s.log_start, s.log_end, s.high_watermark);
    assert_eq!(
        offsets(&now),
        offsets(before),
        "{context}: (log start, log end, high watermark)"
    );
    assert_eq!(now.bases, before.bases, "{context}: segments");
    assert_eq!(now.files, before.files, "{context}: files on disk");
    assert_eq!(
        now.locations, before.locations,
        "{context}: batch locations"
    );
    assert!(
        now.file_bytes == before.file_bytes,
        "{context}: segment file contents differ"
    );
    assert!(
        now.batches == before.batches,
        "{context}: stored batches differ"
    );
}

/// Reopens the log from disk (full CRC scan) and checks recovery had nothing to cut.
fn reopen(dir: &Path, config: LogConfig, log_start_checkpoint: Offset) -> PartitionLog {
    let (log, report) = PartitionLog::open(dir, config, 0, log_start_checkpoint, NOW).unwrap();
    assert!(
        report.truncated.is_none(),
        "recovery cut {:?}",
        report.truncated
    );
    assert!(
        report.deleted_segments.is_empty(),
        "recovery deleted {:?}",
        report.deleted_segments
    );
    log
}

// ---------------------------------------------------------------------------------------------
// append_entry, read_batch_at, batch_locations

#[test]
fn append_entry_assigns_contiguous_offsets_and_stamps_the_leader_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    assert!(log.is_replicated());

    // Entry 1: one batch of 2 records, term 3.
    let mut e1 = make_batch(0, 2, NOW, b"one");
    let info = log.append_entry(&mut e1, 3, NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 1));
    assert!(!info.duplicate);
    assert_eq!(info.log_append_time_ms, None);

    // Entry 2: two batches (3 records, then 1) in one buffer, term 3.
    let mut e2 = [
        make_batch(0, 3, NOW + 1, b"two-a"),
        make_batch(0, 1, NOW + 2, b"two-b"),
    ]
    .concat();
    let info = log.append_entry(&mut e2, 3, NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (2, 5));

    // Entry 3: a new term.
    let mut e3 = make_batch(0, 2, NOW + 3, b"three");
    let info = log.append_entry(&mut e3, 7, NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (6, 7));
    assert_eq!(log.log_end_offset(), 8);

    let expected_locations = vec![loc(0, 2, 3), loc(2, 5, 3), loc(5, 6, 3), loc(6, 8, 7)];
    assert_eq!(log.batch_locations().unwrap(), expected_locations);

    // The stored batches, built independently: base offset and epoch rewritten, CRC valid.
    let mut expected = vec![
        make_batch(0, 2, NOW, b"one"),
        make_batch(2, 3, NOW + 1, b"two-a"),
        make_batch(5, 1, NOW + 2, b"two-b"),
        make_batch(6, 2, NOW + 3, b"three"),
    ];
    for (b, epoch) in expected.iter_mut().zip([3, 3, 3, 7]) {
        batch::set_partition_leader_epoch(b, epoch).unwrap();
    }
    for (l, want) in expected_locations.iter().zip(&expected) {
        let got = log.read_batch_at(l.base_offset).unwrap();
        assert_eq!(&got, want, "batch at {}", l.base_offset);
        let h = batch::validate(&got).expect("stored batch has a valid CRC");
        assert_eq!(h.base_offset, l.base_offset);
        assert_eq!(h.partition_leader_epoch, l.leader_epoch);
        assert_eq!(h.next_offset(), l.next_offset);
    }
    // The caller's buffers were stamped in place, as stored.
    assert_eq!(e1, expected[0]);
    assert_eq!(e2, [expected[1].clone(), expected[2].clone()].concat());
    assert_eq!(e3, expected[3]);

    // The segment file is exactly the stored batches, and a reopen (full CRC scan) keeps them.
    assert_eq!(
        std::fs::read(segment_path(dir.path(), 0, ".log")).unwrap(),
        expected.concat()
    );
    drop(log);
    let log = reopen(dir.path(), LogConfig::default(), 0);
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(log.batch_locations().unwrap(), expected_locations);
    assert_eq!(stored(&log), expected);
}

#[test]
fn append_entry_keeps_the_leaders_timestamps_on_a_log_append_time_topic() {
    // Followers must store exactly what the leader proposed: append_entry never rewrites
    // timestamps (only the base offset and the epoch, both outside the CRC).
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open_replicated(dir.path(), config);
    let mut b = batch(0);
    let info = log.append_entry(&mut b, 2, NOW + 999_999).unwrap();
    assert_eq!(info.log_append_time_ms, None);
    assert_eq!(log.read_batch_at(0).unwrap(), expected_stored(0, 0, 2));
}

#[test]
fn append_entry_refuses_a_bad_crc_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    append_entries(&mut log, 0, 1, 1);
    let before = snapshot(&log);
    let size_before = log.size_bytes();

    // A single damaged batch.
    let mut bad = batch(1);
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let err = log.append_entry(&mut bad, 1, NOW).unwrap_err();
    assert!(
        matches!(err, StorageError::Batch(BatchError::CrcMismatch { .. })),
        "{err}"
    );
    assert_unchanged(&log, &before, "damaged batch");

    // A good batch followed by a damaged one in the same entry: none of it is stored.
    let mut damaged = batch(2);
    damaged[70] ^= 0x10;
    let mut entry = [batch(1), damaged].concat();
    let err = log.append_entry(&mut entry, 1, NOW).unwrap_err();
    assert!(
        matches!(err, StorageError::Batch(BatchError::CrcMismatch { .. })),
        "{err}"
    );
    assert_unchanged(&log, &before, "good batch then damaged batch");

    // A truncated entry.
    let whole = batch(1);
    let mut torn = whole[..whole.len() - 3].to_vec();
    assert!(log.append_entry(&mut torn, 1, NOW).is_err());
    assert_unchanged(&log, &before, "torn entry");
    assert_eq!(log.size_bytes(), size_before);

    // The log stays online and the next good entry lands right after the first one.
    assert!(!log.is_offline());
    let mut good = batch(3);
    let info = log.append_entry(&mut good, 1, NOW).unwrap();
    assert_eq!(info.base_offset, 2);
    assert_eq!(
        log.batch_locations().unwrap(),
        vec![loc(0, 2, 1), loc(2, 4, 1)]
    );
}

#[test]
fn append_entry_on_an_offline_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    append_entries(&mut log, 0, 1, 1);
    log.mark_offline();
    let err = log.append_entry(&mut batch(1), 1, NOW).unwrap_err();
    assert!(matches!(err, StorageError::LogOffline(_)), "{err}");
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.batch_locations().unwrap(), vec![loc(0, 2, 1)]);
}

#[test]
fn batch_locations_walk_every_segment_in_offset_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    assert_eq!(log.batch_locations().unwrap(), vec![], "empty log");
    let mut written = append_entries(&mut log, 0, 5, 1);
    written.extend(append_entries(&mut log, 5, 9, 2));
    written.extend(append_entries(&mut log, 9, 11, 4));
    assert_eq!(bases(&log), vec![0, 6, 12, 18]);
    assert_eq!(log.log_end_offset(), 22);

    let mut expected = Vec::new();
    for i in 0..11 {
        let epoch = match i {
            0..=4 => 1,
            5..=8 => 2,
            _ => 4,
        };
        let base = 2 * i as Offset;
        expected.push(loc(base, base + 2, epoch));
    }
    assert_eq!(log.batch_locations().unwrap(), expected);
    assert_eq!(stored(&log), written);
    for (i, b) in written.iter().enumerate() {
        assert_eq!(
            *b,
            expected_stored(i, 2 * i as Offset, expected[i].leader_epoch)
        );
    }

    // Reopened from disk: the same walk.
    drop(log);
    let log = reopen(dir.path(), small_segments(), 0);
    assert_eq!(bases(&log), vec![0, 6, 12, 18]);
    assert_eq!(log.batch_locations().unwrap(), expected);
    assert_eq!(stored(&log), written);
}

#[test]
fn batch_locations_start_at_the_first_stored_segment_after_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    append_entries(&mut log, 0, 11, 1);
    log.advance_high_watermark(22);
    // DeleteRecords keeps a replicated log's segments (its Raft group may need them)...
    assert_eq!(log.delete_records_before(7).unwrap(), 7);
    assert_eq!(bases(&log), vec![0, 6, 12, 18]);
    // ...deleting them (as retention will, once Raft can do without them) is another step.
    assert_eq!(log.move_log_start(7, true).unwrap(), 7);
    assert_eq!(bases(&log), vec![6, 12, 18]);
    let locations = log.batch_locations().unwrap();
    // Segment 6 is kept whole (it holds offset 7), so its first batch is still listed.
    assert_eq!(locations.first(), Some(&loc(6, 8, 1)));
    assert_eq!(locations.last(), Some(&loc(20, 22, 1)));
    assert_eq!(locations.len(), 8);
    assert!(log.read_batch_at(0).is_err(), "segment 0 was deleted");
}

#[test]
fn read_batch_at_returns_only_whole_stored_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    let written = append_entries(&mut log, 0, 8, 5);
    assert_eq!(bases(&log), vec![0, 6, 12]);
    // Every batch, in every segment, including the first batch of each segment.
    for (i, b) in written.iter().enumerate() {
        assert_eq!(&log.read_batch_at(2 * i as Offset).unwrap(), b, "batch {i}");
    }
    // Not a batch start, at or past the log end, below the log start: errors.
    for offset in [1, 7, 13, 15, 16, 17, 100, -1] {
        let err = log.read_batch_at(offset).unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt { .. }),
            "{offset}: {err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("no record batch starts at offset {offset}")),
            "{offset}: {err}"
        );
    }
}

#[test]
fn read_batch_at_never_returns_a_corrupt_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    let written = append_entries(&mut log, 0, 3, 1);
    // Flip a byte inside the second batch (offsets 2-3) on disk, under the open log.
    let path = segment_path(dir.path(), 0, ".log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[written[0].len() + 70] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let err = log.read_batch_at(2).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("offset 2"), "{err}");
    // Its neighbours are fine, and the header walk still sees all three.
    assert_eq!(log.read_batch_at(0).unwrap(), written[0]);
    assert_eq!(log.read_batch_at(4).unwrap(), written[2]);
    assert_eq!(log.batch_locations().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// The high watermark in replicated mode

#[test]
fn in_replicated_mode_flushes_do_not_move_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    append_entries(&mut log, 0, 3, 1);
    assert_eq!(log.high_watermark(), 0);
    log.sync_active().unwrap();
    log.mark_flushed(6);
    assert_eq!(log.high_watermark(), 0, "mark_flushed");
    log.flush_all().unwrap();
    assert_eq!(log.high_watermark(), 0, "flush_all");
    if let Some(t) = log.sync_target().unwrap() {
        t.file.sync_data().unwrap();
        log.mark_flushed(t.upto);
    }
    assert_eq!(log.high_watermark(), 0, "the broker's flush path");
    assert_eq!(log.log_end_offset(), 6);

    // The same calls on a log that is not replicated do move it (the contrast).
    let dir2 = tempfile::tempdir().unwrap();
    let (mut plain, _) = open(dir2.path(), LogConfig::default());
    assert!(!plain.is_replicated());
    plain.append(&mut batch(0), NOW).unwrap();
    plain.flush_all().unwrap();
    assert_eq!(plain.high_watermark(), 2);
}

#[test]
fn advance_high_watermark_never_moves_back_or_past_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    append_entries(&mut log, 0, 3, 1);
    log.advance_high_watermark(2);
    assert_eq!(log.high_watermark(), 2);
    log.advance_high_watermark(1);
    assert_eq!(log.high_watermark(), 2, "never backwards");
    log.advance_high_watermark(-10);
    assert_eq!(log.high_watermark(), 2, "never backwards");
    log.advance_high_watermark(3); // inside a batch: the commit point is what it is
    assert_eq!(log.high_watermark(), 3);
    log.advance_high_watermark(100);
    assert_eq!(log.high_watermark(), 6, "clamped to the log end");
    log.advance_high_watermark(4);
    assert_eq!(log.high_watermark(), 6);
    append_entries(&mut log, 3, 4, 1);
    assert_eq!(log.high_watermark(), 6, "an append does not commit");
    log.advance_high_watermark(Offset::MAX);
    assert_eq!(log.high_watermark(), 8);
}

#[test]
fn set_replicated_clamps_the_commit_point_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default());
    for i in 0..4 {
        log.append(&mut batch(i), NOW).unwrap();
    }
    log.flush_all().unwrap();
    assert_eq!(log.high_watermark(), 8);
    assert_eq!(log.delete_records_before(2).unwrap(), 2);

    log.set_replicated(100);
    assert!(log.is_replicated());
    assert_eq!(log.high_watermark(), 8, "clamped to the log end");
    log.set_replicated(4);
    assert_eq!(
        log.high_watermark(),
        4,
        "the commit point, even below the flushed end"
    );
    log.set_replicated(0);
    assert_eq!(log.high_watermark(), 2, "clamped to the log start");
    log.flush_all().unwrap();
    assert_eq!(log.high_watermark(), 2);
}

#[test]
fn consumers_never_read_past_the_high_watermark_but_replicas_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    let written = append_entries(&mut log, 0, 4, 1);
    log.flush_all().unwrap();

    // Nothing committed: a consumer sees nothing, a replica reads every batch.
    assert!(log.read_slice(0).unwrap().is_none());
    assert!(consumer_read(&log).is_empty());
    assert_eq!(log.read_batch_at(6).unwrap(), written[3]);

    // Committed up to 4: a consumer gets exactly the first two batches.
    log.advance_high_watermark(4);
    assert_eq!(consumer_read(&log), written[..2].concat());
    let slice = log.read_slice(2).unwrap().unwrap();
    assert_eq!(
        read_batches(&slice, log.high_watermark(), 1 << 20, true).unwrap(),
        written[1]
    );
    assert!(
        log.read_slice(4).unwrap().is_none(),
        "at the high watermark"
    );
    assert!(log.read_slice(7).unwrap().is_none(), "above it");
    assert!(matches!(
        log.read_slice(9),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.read_batch_at(4).unwrap(), written[2]);
    assert_eq!(log.read_batch_at(6).unwrap(), written[3]);

    // Timestamp lookups and the max timestamp do not reveal uncommitted batches either.
    assert_eq!(log.offset_for_timestamp(NOW + 2).unwrap(), None);
    assert_eq!(
        log.offset_for_timestamp(NOW + 1).unwrap(),
        Some((NOW + 1, 2))
    );
    assert!(
        log.max_timestamp().is_none_or(|(_, offset)| offset < 4),
        "{:?}",
        log.max_timestamp()
    );

    log.advance_high_watermark(8);
    assert_eq!(consumer_read(&log), written.concat());
}

// ---------------------------------------------------------------------------------------------
// truncate_to

#[test]
fn truncate_to_a_batch_boundary_in_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    let written = append_entries(&mut log, 0, 5, 1);
    log.advance_high_watermark(4);

    log.truncate_to(6, NOW).unwrap();
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.high_watermark(), 4);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(
        log.batch_locations().unwrap(),
        vec![loc(0, 2, 1), loc(2, 4, 1), loc(4, 6, 1)]
    );
    assert_eq!(stored(&log), written[..3]);
    assert_eq!(
        std::fs::read(segment_path(dir.path(), 0, ".log")).unwrap(),
        written[..3].concat(),
        "the file is cut to the batch boundary"
    );
    assert_eq!(log.size_bytes(), written[..3].concat().len() as u64);
    assert!(log.read_batch_at(6).is_err());
    assert!(log.read_batch_at(8).is_err());
    assert_eq!(consumer_read(&log), written[..2].concat());

    // Appends continue at the cut, in the new term.
    let mut replaced = append_entries(&mut log, 10, 12, 2);
    assert_eq!(
        batch::validate(&replaced[0]).unwrap().base_offset,
        6,
        "first append after the cut"
    );
    assert_eq!(log.log_end_offset(), 10);
    let mut expected: Vec<Vec<u8>> = written[..3].to_vec();
    expected.append(&mut replaced);
    assert_eq!(stored(&log), expected);
    assert_eq!(
        log.batch_locations().unwrap(),
        vec![
            loc(0, 2, 1),
            loc(2, 4, 1),
            loc(4, 6, 1),
            loc(6, 8, 2),
            loc(8, 10, 2)
        ]
    );
    log.advance_high_watermark(10);
    assert_eq!(consumer_read(&log), expected.concat());

    let before = snapshot(&log);
    drop(log);
    let mut log = reopen(dir.path(), LogConfig::default(), 0);
    log.set_replicated(10);
    assert_unchanged(&log, &before, "after reopen");
}

#[test]
fn truncate_to_survives_reopen_before_anything_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    let written = append_entries(&mut log, 0, 11, 1);
    log.truncate_to(14, NOW).unwrap();
    let before = snapshot(&log);
    assert_eq!(before.log_end, 14);
    drop(log);
    let mut log = reopen(dir.path(), small_segments(), 0);
    log.set_replicated(0);
    assert_unchanged(&log, &before, "after reopen");
    assert_eq!(stored(&log), written[..7]);
}

#[test]
fn truncate_to_across_segment_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    let written = append_entries(&mut log, 0, 12, 1);
    assert_eq!(bases(&log), vec![0, 6, 12, 18]);
    assert_eq!(files_in(dir.path()), segment_files(&[0, 6, 12, 18]));
    log.advance_high_watermark(4);

    // Offset 8 is the second batch of segment 6: segments 12 and 18 go, segment 6 is cut.
    log.truncate_to(8, NOW).unwrap();
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(log.high_watermark(), 4);
    assert_eq!(bases(&log), vec![0, 6]);
    assert_eq!(files_in(dir.path()), segment_files(&[0, 6]));
    assert_eq!(
        std::fs::read(segment_path(dir.path(), 0, ".log")).unwrap(),
        written[..3].concat(),
        "segment 0 untouched"
    );
    assert_eq!(
        std::fs::read(segment_path(dir.path(), 6, ".log")).unwrap(),
        written[3],
        "segment 6 keeps its first batch"
    );
    assert_eq!(stored(&log), written[..4]);
    let locations: Vec<Offset> = log
        .batch_locations()
        .unwrap()
        .iter()
        .map(|l| l.base_offset)
        .collect();
    assert_eq!(locations, vec![0, 2, 4, 6]);

    // Appends continue at 8: two more fill segment 6, the next one rolls to a new segment 12.
    let mut new = append_entries(&mut log, 20, 23, 2);
    assert_eq!(log.log_end_offset(), 14);
    assert_eq!(bases(&log), vec![0, 6, 12]);
    assert_eq!(
        log.batch_locations().unwrap()[4..],
        [loc(8, 10, 2), loc(10, 12, 2), loc(12, 14, 2)]
    );
    let mut expected = written[..4].to_vec();
    expected.append(&mut new);
    assert_eq!(stored(&log), expected);
    for (i, j) in [(4, 20), (5, 21), (6, 22)] {
        assert_eq!(expected[i], expected_stored(j, 2 * i as Offset, 2));
    }
    log.advance_high_watermark(14);
    assert_eq!(consumer_read(&log), expected.concat());

    let before = snapshot(&log);
    drop(log);
    let mut log = reopen(dir.path(), small_segments(), 0);
    log.set_replicated(14);
    assert_unchanged(&log, &before, "after reopen");
    assert_eq!(consumer_read(&log), expected.concat());
}

#[test]
fn truncate_to_exactly_a_segment_base_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    let written = append_entries(&mut log, 0, 12, 1);
    assert_eq!(bases(&log), vec![0, 6, 12, 18]);
    let seg6 = std::fs::read(segment_path(dir.path(), 6, ".log")).unwrap();

    log.truncate_to(12, NOW).unwrap();
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(bases(&log), vec![0, 6]);
    assert_eq!(files_in(dir.path()), segment_files(&[0, 6]));
    assert_eq!(
        std::fs::read(segment_path(dir.path(), 6, ".log")).unwrap(),
        seg6,
        "the segment before the cut is whole"
    );
    assert_eq!(stored(&log), written[..6]);

    // Segment 6 is full: the next entry starts a new segment 12 again.
    let new = append_entries(&mut log, 30, 31, 3);
    assert_eq!(bases(&log), vec![0, 6, 12]);
    assert_eq!(
        std::fs::read(segment_path(dir.path(), 12, ".log")).unwrap(),
        new[0]
    );
    assert_eq!(new[0], expected_stored(30, 12, 3));
    assert_eq!(log.read_batch_at(12).unwrap(), new[0]);

    let before = snapshot(&log);
    drop(log);
    let mut log = reopen(dir.path(), small_segments(), 0);
    log.set_replicated(0);
    assert_unchanged(&log, &before, "after reopen");
}

#[test]
fn truncate_to_the_first_segment_base_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    append_entries(&mut log, 0, 8, 1);
    assert_eq!(bases(&log), vec![0, 6, 12]);
    log.truncate_to(0, NOW).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(bases(&log), vec![0]);
    assert_eq!(files_in(dir.path()), segment_files(&[0]));
    assert_eq!(
        std::fs::metadata(segment_path(dir.path(), 0, ".log"))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(log.batch_locations().unwrap(), vec![]);
    assert_eq!(log.size_bytes(), 0);

    drop(log);
    let mut log = reopen(dir.path(), small_segments(), 0);
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.batch_locations().unwrap(), vec![]);
    log.set_replicated(0);
    let new = append_entries(&mut log, 40, 41, 9);
    assert_eq!(new[0], expected_stored(40, 0, 9));
}

#[test]
fn truncate_to_refuses_an_offset_inside_a_batch_in_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    let mut e = [make_batch(0, 3, NOW, b"a"), make_batch(0, 3, NOW, b"b")].concat();
    log.append_entry(&mut e, 1, NOW).unwrap();
    append_entries(&mut log, 0, 2, 1);
    assert_eq!(log.log_end_offset(), 10);
    let before = snapshot(&log);
    for offset in [1, 2, 4, 5, 7, 9] {
        let err = log.truncate_to(offset, NOW).unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt { .. }),
            "{offset}: {err}"
        );
        assert!(err.to_string().contains("inside a record batch"), "{err}");
        assert_unchanged(
            &log,
            &before,
            &format!("truncate_to({offset}) changed the log"),
        );
    }
    // Still usable at the same log end.
    let new = append_entries(&mut log, 5, 6, 2);
    assert_eq!(new[0], expected_stored(5, 10, 2));
}

#[test]
fn truncate_to_refuses_an_offset_inside_a_batch_of_an_earlier_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    append_entries(&mut log, 0, 11, 1);
    assert_eq!(bases(&log), vec![0, 6, 12, 18]);
    let before = snapshot(&log);
    for offset in [3, 9] {
        let err = log.truncate_to(offset, NOW).unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt { .. }),
            "{offset}: {err}"
        );
        assert_unchanged(
            &log,
            &before,
            &format!("truncate_to({offset}) changed the log"),
        );
    }
}

#[test]
fn truncate_to_refuses_an_offset_below_the_high_watermark_or_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    append_entries(&mut log, 0, 11, 1);
    log.advance_high_watermark(14);
    assert_eq!(log.move_log_start(8, true).unwrap(), 8);
    assert_eq!(bases(&log), vec![6, 12, 18]);
    let before = snapshot(&log);
    // 12 and 10 are committed, 4 is below the log start too, -1 is nonsense.
    for offset in [12, 10, 8, 4, 0, -1] {
        let err = log.truncate_to(offset, NOW).unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt { .. }),
            "{offset}: {err}"
        );
        assert!(err.to_string().contains("refusing to truncate"), "{err}");
        assert_unchanged(
            &log,
            &before,
            &format!("truncate_to({offset}) changed the log"),
        );
    }
    // Exactly at the high watermark is allowed: nothing committed is removed.
    log.truncate_to(14, NOW).unwrap();
    assert_eq!(log.log_end_offset(), 14);
    assert_eq!(log.high_watermark(), 14);
    assert_eq!(bases(&log), vec![6, 12]);
}

#[test]
fn truncate_to_at_or_past_the_log_end_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    append_entries(&mut log, 0, 8, 1);
    let before = snapshot(&log);
    for offset in [16, 17, 1000] {
        log.truncate_to(offset, NOW).unwrap();
        assert_unchanged(&log, &before, &format!("truncate_to({offset})"));
    }
}

#[test]
fn truncate_to_in_a_segment_with_several_index_entries() {
    // Batches of ~1 KiB: the offset index gets an entry every ~4 batches, and the truncated
    // tail had entries of its own that must not survive the cut.
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    let value = vec![b'v'; 500];
    let mut written = Vec::new();
    for i in 0..20 {
        let mut b = make_batch(0, 2, NOW + i, &value);
        log.append_entry(&mut b, 1, NOW).unwrap();
        written.push(b);
    }
    assert!(
        log.segments[&0].scan_start(38) > 0,
        "expected several index entries"
    );
    log.truncate_to(22, NOW).unwrap();
    let mut expected = written[..11].to_vec();
    for j in 0..10 {
        let mut b = make_batch(0, 2, NOW + 100 + j, b"new");
        log.append_entry(&mut b, 2, NOW).unwrap();
        expected.push(b);
    }
    assert_eq!(log.log_end_offset(), 42);
    log.advance_high_watermark(42);
    assert_eq!(stored(&log), expected);
    assert_eq!(consumer_read(&log), expected.concat());
    // A fetch at any offset starts at the batch holding it.
    for offset in 0..42 {
        let slice = log.read_slice(offset).unwrap().unwrap();
        let data = read_batches(&slice, 42, 1, true).unwrap();
        assert_eq!(data, expected[(offset / 2) as usize], "fetch at {offset}");
    }
    // The truncated batches' timestamps (NOW+11..NOW+19) are gone from the time index.
    assert_eq!(
        log.offset_for_timestamp(NOW + 15).unwrap(),
        Some((NOW + 100, 22))
    );

    let before = snapshot(&log);
    drop(log);
    let mut log = reopen(dir.path(), LogConfig::default(), 0);
    log.set_replicated(42);
    assert_unchanged(&log, &before, "after reopen");
    assert_eq!(
        log.offset_for_timestamp(NOW + 15).unwrap(),
        Some((NOW + 100, 22))
    );
}

#[test]
fn truncate_to_rebuilds_idempotent_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    // Producer 7: sequences 0-1, 2-3, 4-5 at offsets 0-1, 2-3, 4-5.
    for seq in [0, 2, 4] {
        log.append_entry(&mut idempotent_batch(7, 0, seq, 2), 1, NOW)
            .unwrap();
    }
    // Producer 9: one batch, sequences 0-2 at offsets 6-8.
    log.append_entry(&mut idempotent_batch(9, 0, 0, 3), 1, NOW)
        .unwrap();
    assert_eq!(log.log_end_offset(), 9);
    let header = |b: &[u8]| batch::validate(b).unwrap();

    // Before: sequence 2 is a retry of offsets 2-3, sequence 6 is next.
    match log.producers.check(&header(&idempotent_batch(7, 0, 2, 2))) {
        Ok(SequenceCheck::Duplicate(d)) => assert_eq!((d.base_offset, d.last_offset), (2, 3)),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert!(log
        .producers
        .check(&header(&idempotent_batch(9, 0, 5, 1)))
        .is_err());

    log.truncate_to(2, NOW).unwrap();
    assert_eq!(log.log_end_offset(), 2);

    // Sequence 2 was truncated away: it is the next one again, and 4 is a gap.
    assert!(
        matches!(
            log.producers.check(&header(&idempotent_batch(7, 0, 4, 2))),
            Err(ProducerError::OutOfOrderSequence {
                expected: 2,
                got: 4,
                ..
            })
        ),
        "sequence 4 must be a gap after the cut"
    );
    // Sequence 0 is still in the log: still a duplicate of offsets 0-1.
    match log.producers.check(&header(&idempotent_batch(7, 0, 0, 2))) {
        Ok(SequenceCheck::Duplicate(d)) => assert_eq!((d.base_offset, d.last_offset), (0, 1)),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // Producer 9 is gone entirely: any sequence is accepted.
    assert_eq!(
        log.producers.check(&header(&idempotent_batch(9, 0, 5, 1))),
        Ok(SequenceCheck::Append)
    );
    assert_eq!(log.producers.len(), 1);

    // Through the producer path: the retry of sequence 2 is appended (not a duplicate).
    let info = log.append(&mut idempotent_batch(7, 0, 2, 2), NOW).unwrap();
    assert!(!info.duplicate);
    assert_eq!((info.base_offset, info.last_offset), (2, 3));
    // ...and a second retry of it now is a duplicate of the new copy.
    let info = log.append(&mut idempotent_batch(7, 0, 2, 2), NOW).unwrap();
    assert!(info.duplicate);
    assert_eq!(info.base_offset, 2);
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn truncate_to_and_reset_to_let_compaction_see_the_rewritten_segments() {
    // Compaction skips closed segments below the end it last compacted; segments rewritten
    // after a truncation or a reset below that end must not be skipped.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_compact: true,
        ..small_segments()
    };
    let mut log = open_replicated(dir.path(), config);
    append_entries(&mut log, 0, 11, 1);
    assert_eq!(bases(&log), vec![0, 6, 12, 18]);
    let compacted = |log: &mut PartitionLog| {
        let input = log.compaction_input(NOW).expect("something to compact");
        assert_eq!(log.install_cleaned(&input, Vec::new(), NOW).unwrap(), 0);
        assert!(
            log.compaction_input(NOW).is_none(),
            "nothing new to compact"
        );
        input.closed_end
    };
    assert_eq!(compacted(&mut log), 18);

    // Cut back to 8, then rewrite up to a new closed segment ending at 12 (< 18).
    log.truncate_to(8, NOW).unwrap();
    append_entries(&mut log, 20, 23, 2);
    assert_eq!(bases(&log), vec![0, 6, 12]);
    let input = log.compaction_input(NOW);
    assert_eq!(
        input.map(|i| i.closed_end),
        Some(12),
        "segment 6 was rewritten after the truncation"
    );
    assert_eq!(compacted(&mut log), 12);

    // Reset below that end, then fill a closed segment again.
    log.reset_to(4, None, NOW).unwrap();
    assert!(
        log.compaction_input(NOW).is_none(),
        "a single empty segment"
    );
    append_entries(&mut log, 30, 34, 3);
    assert_eq!(bases(&log), vec![4, 10]);
    assert_eq!(
        log.compaction_input(NOW).map(|i| i.closed_end),
        Some(10),
        "segment 4 is new since the reset"
    );
}

// ---------------------------------------------------------------------------------------------
// reset_to

#[test]
fn reset_to_empties_the_log_at_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    append_entries(&mut log, 0, 8, 1);
    log.advance_high_watermark(6);
    assert_eq!(bases(&log), vec![0, 6, 12]);

    log.reset_to(50, None, NOW).unwrap();
    assert_eq!(log.log_start_offset(), 50);
    assert_eq!(log.log_end_offset(), 50);
    assert_eq!(log.high_watermark(), 50);
    assert!(log.is_replicated());
    assert_eq!(bases(&log), vec![50]);
    assert_eq!(files_in(dir.path()), segment_files(&[50]));
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log.batch_locations().unwrap(), vec![]);
    assert!(log.read_batch_at(0).is_err());
    assert!(log.read_batch_at(50).is_err());
    assert!(log.read_slice(50).unwrap().is_none());
    assert!(matches!(
        log.read_slice(0),
        Err(StorageError::OffsetOutOfRange { .. })
    ));

    // Reopened empty, with the log start checkpointed at the reset offset.
    drop(log);
    let mut log = reopen(dir.path(), small_segments(), 50);
    assert_eq!(log.log_start_offset(), 50);
    assert_eq!(log.log_end_offset(), 50);
    assert_eq!(log.high_watermark(), 50);
    assert_eq!(bases(&log), vec![50]);
    log.set_replicated(50);

    // Appends continue from 50 (and roll as usual).
    let written = append_entries(&mut log, 0, 4, 6);
    for (i, b) in written.iter().enumerate() {
        assert_eq!(*b, expected_stored(i, 50 + 2 * i as Offset, 6));
    }
    assert_eq!(log.log_end_offset(), 58);
    assert_eq!(bases(&log), vec![50, 56]);
    assert_eq!(log.high_watermark(), 50);
    log.advance_high_watermark(58);
    assert_eq!(consumer_read(&log), written.concat());

    let before = snapshot(&log);
    drop(log);
    let mut log = reopen(dir.path(), small_segments(), 50);
    log.set_replicated(58);
    assert_unchanged(&log, &before, "after reopen");
}

#[test]
fn reset_to_survives_reopen_without_a_checkpoint() {
    // The new segment's name carries the offset, so even a log start checkpoint that was not
    // written yet (0) gives the reset log back.
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    append_entries(&mut log, 0, 3, 1);
    log.reset_to(30, None, NOW).unwrap();
    drop(log);
    let log = reopen(dir.path(), LogConfig::default(), 0);
    assert_eq!(log.log_start_offset(), 30);
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(files_in(dir.path()), segment_files(&[30]));
}

#[test]
fn reset_to_an_offset_inside_the_old_log_replaces_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), small_segments());
    append_entries(&mut log, 0, 8, 1);
    assert_eq!(bases(&log), vec![0, 6, 12]);
    // Offset 6 is the base of an existing segment: it is recreated empty.
    log.reset_to(6, None, NOW).unwrap();
    assert_eq!(files_in(dir.path()), segment_files(&[6]));
    assert_eq!(
        std::fs::metadata(segment_path(dir.path(), 6, ".log"))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.high_watermark()
        ),
        (6, 6, 6)
    );
    let written = append_entries(&mut log, 20, 22, 2);
    assert_eq!(written[0], expected_stored(20, 6, 2));
    assert_eq!(
        log.batch_locations().unwrap(),
        vec![loc(6, 8, 2), loc(8, 10, 2)]
    );

    let before = snapshot(&log);
    drop(log);
    let mut log = reopen(dir.path(), small_segments(), 6);
    log.set_replicated(6);
    assert_unchanged(&log, &before, "after reopen");
}

#[test]
fn reset_to_forgets_idempotent_producers() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_replicated(dir.path(), LogConfig::default());
    log.append_entry(&mut idempotent_batch(7, 3, 0, 2), 1, NOW)
        .unwrap();
    assert_eq!(log.producers.len(), 1);
    log.reset_to(100, None, NOW).unwrap();
    assert!(log.producers.is_empty());
    // An old epoch or a sequence gap would have been refused before the reset.
    let info = log.append(&mut idempotent_batch(7, 1, 40, 2), NOW).unwrap();
    assert_eq!(info.base_offset, 100);
    assert!(!info.duplicate);
}

// ---------------------------------------------------------------------------------------------
// sync_active / active_file

#[test]
fn sync_active_makes_the_appended_entries_durable() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let reopen_on = |fs: &FaultyFileSystem| {
        PartitionLog::open_on(
            Arc::new(fs.clone()),
            dir.path(),
            LogConfig::default(),
            0,
            0,
            NOW,
        )
        .unwrap()
        .0
    };
    let mut log = reopen_on(&fs);
    log.set_replicated(0);
    let synced = append_entries(&mut log, 0, 2, 1);
    log.sync_active().unwrap();
    append_entries(&mut log, 2, 4, 1); // never synced
    fs.crash(|_, _| 0).unwrap(); // lose every unsynced byte
    drop(log);

    let fs = FaultyFileSystem::new();
    let mut log = reopen_on(&fs);
    assert_eq!(
        log.log_end_offset(),
        4,
        "exactly the synced entries survive"
    );
    assert_eq!(stored(&log), synced);

    // active_file gives the same file: syncing it outside the log also makes entries durable.
    log.set_replicated(0);
    let more = append_entries(&mut log, 4, 5, 2);
    let (file, path) = log.active_file().unwrap();
    assert_eq!(path, segment_path(dir.path(), 0, ".log"));
    file.sync_data().unwrap();
    fs.crash(|_, _| 0).unwrap();
    drop(log);
    let log = reopen_on(&FaultyFileSystem::new());
    assert_eq!(stored(&log), [synced, more].concat());

    // A failing fsync is reported, never swallowed.
    let fs = FaultyFileSystem::new();
    let mut log = reopen_on(&fs);
    log.set_replicated(0);
    append_entries(&mut log, 5, 6, 2);
    fs.set_plan(FaultPlan {
        fail_syncs: true,
        ..FaultPlan::default()
    });
    assert!(matches!(log.sync_active(), Err(StorageError::Io { .. })));
}

#[test]
fn sync_active_syncs_the_segment_after_a_roll() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let (mut log, _) = PartitionLog::open_on(
        Arc::new(fs.clone()),
        dir.path(),
        small_segments(),
        0,
        0,
        NOW,
    )
    .unwrap();
    log.set_replicated(0);
    let written = append_entries(&mut log, 0, 5, 1); // the roll at 6 flushed segment 0
    assert_eq!(bases(&log), vec![0, 6]);
    log.sync_active().unwrap();
    fs.crash(|_, _| 0).unwrap();
    drop(log);
    let log = reopen(dir.path(), small_segments(), 0);
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(stored(&log), written);
}
