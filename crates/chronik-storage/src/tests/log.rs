//! Partition log tests: append/read, roll, retention, and recovery from damaged files, each
//! damaged log reopened several times with the same result.

use super::*;
use crate::batch::tests::make_batch;
use crate::segment::file_stem;
use std::fs::OpenOptions;
use std::io::Write;

const NOW: i64 = 1_700_000_000_000;

fn open(dir: &Path, config: LogConfig) -> (PartitionLog, RecoveryReport) {
    PartitionLog::open(dir, config, 0, 0, NOW).unwrap()
}

/// Appends `n` batches of 2 records each and flushes them.
fn fill(log: &mut PartitionLog, n: usize) -> Vec<Vec<u8>> {
    let mut written = Vec::new();
    for i in 0..n {
        let mut b = make_batch(0, 2, NOW + i as i64, format!("value-{i}").as_bytes());
        log.append(&mut b, NOW).unwrap();
        written.push(b);
    }
    log.flush_all().unwrap();
    written
}

fn read_all(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let slice = log.read_slice(offset).unwrap().unwrap();
        let data = read_batches(&slice, log.high_watermark(), 1 << 20, true).unwrap();
        let batches = batch::split_and_validate(&data).unwrap();
        offset = batches.last().unwrap().1.next_offset();
        out.extend_from_slice(&data);
    }
    out
}

fn segment_path(dir: &Path, base: Offset, suffix: &str) -> PathBuf {
    dir.join(format!("{}{suffix}", file_stem(base)))
}

#[test]
fn appends_get_consecutive_offsets_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default());
    let written = fill(&mut log, 5);
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.high_watermark(), 10);
    assert_eq!(read_all(&log), written.concat());
}

#[test]
fn unflushed_appends_are_not_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default());
    let mut b = make_batch(0, 3, NOW, b"x");
    log.append(&mut b, NOW).unwrap();
    assert_eq!(log.high_watermark(), 0);
    assert!(log.read_slice(0).unwrap().is_none());
    let target = log.sync_target().unwrap().unwrap();
    assert_eq!(target.upto, 3);
    log.mark_flushed(target.upto);
    assert_eq!(log.high_watermark(), 3);
}

#[test]
fn fetch_inside_a_batch_returns_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default());
    let written = fill(&mut log, 3);
    let slice = log.read_slice(3).unwrap().unwrap();
    let data = read_batches(&slice, log.high_watermark(), 1, true).unwrap();
    assert_eq!(
        data, written[1],
        "offset 3 is the second record of the second batch"
    );
}

#[test]
fn out_of_range_offsets_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default());
    fill(&mut log, 1);
    assert!(matches!(
        log.read_slice(3),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(log.read_slice(2).unwrap().is_none());
}

#[test]
fn segments_roll_by_size_and_reopen_identically() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let (mut log, _) = open(dir.path(), config.clone());
    let written = fill(&mut log, 12);
    drop(log);
    for _ in 0..3 {
        let (log, report) = open(dir.path(), config.clone());
        assert!(report.truncated.is_none());
        assert!(
            log.segments.len() > 3,
            "expected several segments, got {}",
            log.segments.len()
        );
        assert_eq!(log.log_end_offset(), 24);
        assert_eq!(read_all(&log), written.concat());
    }
}

#[test]
fn retention_by_bytes_and_delete_records_move_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        retention_bytes: 600,
        ..LogConfig::default()
    };
    let (mut log, _) = open(dir.path(), config);
    fill(&mut log, 12);
    let deleted = log.apply_retention(NOW).unwrap();
    assert!(deleted > 0);
    assert!(log.log_start_offset() > 0);
    assert!(log.size_bytes() <= 900);
    let start = log.delete_records_before(22).unwrap();
    assert_eq!(start, 22);
    assert!(matches!(
        log.read_slice(20),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(
        log.delete_records_before(25).is_err(),
        "beyond the high watermark"
    );
}

/// Damages a log in some way and checks that every reopen gives the same valid prefix.
fn reopen_after(damage: impl Fn(&Path), expected_batches: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default());
    let written = fill(&mut log, 6);
    drop(log);
    damage(dir.path());
    for round in 0..3 {
        let (log, report) = open(dir.path(), LogConfig::default());
        assert_eq!(
            read_all(&log),
            written[..expected_batches].concat(),
            "round {round}"
        );
        assert_eq!(
            log.log_end_offset(),
            2 * expected_batches as Offset,
            "round {round}"
        );
        if round > 0 {
            assert!(
                report.truncated.is_none(),
                "round {round}: recovery must be idempotent"
            );
        }
    }
}

#[test]
fn torn_tail_is_cut_to_the_last_whole_batch() {
    reopen_after(
        |dir| {
            let path = segment_path(dir, 0, ".log");
            let len = std::fs::metadata(&path).unwrap().len();
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(len - 7)
                .unwrap();
        },
        5,
    );
}

#[test]
fn torn_header_is_cut() {
    reopen_after(
        |dir| {
            let path = segment_path(dir, 0, ".log");
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(&[0, 0, 0, 0, 0, 0, 0, 12, 0, 0]).unwrap();
        },
        6,
    );
}

#[test]
fn garbage_after_the_last_batch_is_cut() {
    reopen_after(
        |dir| {
            let path = segment_path(dir, 0, ".log");
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(&[0xAB; 500]).unwrap();
        },
        6,
    );
}

#[test]
fn flipped_byte_in_the_middle_cuts_from_that_batch() {
    reopen_after(
        |dir| {
            let path = segment_path(dir, 0, ".log");
            let mut bytes = std::fs::read(&path).unwrap();
            let batch_len = bytes.len() / 6;
            bytes[2 * batch_len + 70] ^= 0x01;
            std::fs::write(&path, bytes).unwrap();
        },
        2,
    );
}

#[test]
fn truncated_index_is_rebuilt() {
    reopen_after(
        |dir| {
            let path = segment_path(dir, 0, ".index");
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(5)
                .unwrap();
            let path = segment_path(dir, 0, ".timeindex");
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(13)
                .unwrap();
        },
        6,
    );
}

#[test]
fn missing_indexes_are_rebuilt() {
    reopen_after(
        |dir| {
            std::fs::remove_file(segment_path(dir, 0, ".index")).unwrap();
            std::fs::remove_file(segment_path(dir, 0, ".timeindex")).unwrap();
        },
        6,
    );
}

#[test]
fn corrupt_segment_drops_the_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let (mut log, _) = open(dir.path(), config.clone());
    let written = fill(&mut log, 12);
    let bases: Vec<Offset> = log.segments.keys().copied().collect();
    drop(log);
    let second = bases[1];
    let path = segment_path(dir.path(), second, ".log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[70] ^= 0xFF;
    std::fs::write(&path, bytes).unwrap();
    for _ in 0..3 {
        let (log, _) = PartitionLog::open(dir.path(), config.clone(), 0, 0, NOW).unwrap();
        assert_eq!(log.log_end_offset(), second);
        let kept = (second / 2) as usize;
        assert_eq!(read_all(&log), written[..kept].concat());
    }
}

#[test]
fn offsets_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default());
    fill(&mut log, 5);
    assert_eq!(
        log.offset_for_timestamp(NOW + 2).unwrap(),
        Some((NOW + 2, 4))
    );
    assert_eq!(log.offset_for_timestamp(NOW + 50).unwrap(), None);
    assert_eq!(log.max_timestamp(), Some((NOW + 4, 9)));
}

#[test]
fn a_corrupt_batch_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default());
    let written = fill(&mut log, 4);
    // Flip a byte inside the third batch (offsets 4-5) while the log is open (no recovery).
    let path = segment_path(dir.path(), 0, ".log");
    let mut bytes = std::fs::read(&path).unwrap();
    let third = written[0].len() + written[1].len();
    bytes[third + 70] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    // A read from the start serves the two good batches only.
    let slice = log.read_slice(0).unwrap().unwrap();
    let data = read_batches(&slice, log.high_watermark(), 1 << 20, true).unwrap();
    assert_eq!(data, written[..2].concat());
    // A read at the corrupt batch is an error naming it.
    let slice = log.read_slice(4).unwrap().unwrap();
    let err = read_batches(&slice, log.high_watermark(), 1 << 20, true).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("offset 4"), "{err}");
    // The batch after it is still readable.
    let slice = log.read_slice(6).unwrap().unwrap();
    let data = read_batches(&slice, log.high_watermark(), 1 << 20, true).unwrap();
    assert_eq!(data, written[3]);
}

/// ListOffsets MAX_TIMESTAMP: the offset of the record holding the largest timestamp, not the
/// last offset of its batch (Kafka's answer).
#[test]
fn max_timestamp_record_is_the_record_not_the_batch_end() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default());
    let mut a = make_batch(0, 3, NOW, b"a");
    log.append(&mut a, NOW).unwrap();
    // Records with timestamp deltas 0, 9, 4: the largest is the middle record (offset 4).
    let mut b = make_batch(0, 3, NOW + 10, b"b");
    let record_len = (b.len() - chronik_types::limits::RECORD_BATCH_HEADER_BYTES) / 3;
    for (i, delta) in [0u8, 9, 4].into_iter().enumerate() {
        b[chronik_types::limits::RECORD_BATCH_HEADER_BYTES + i * record_len + 2] = delta << 1;
    }
    // max_timestamp in the header must say 19 too, and the CRC must cover the change.
    b[35..43].copy_from_slice(&(NOW + 19).to_be_bytes());
    let crc = batch::compute_crc(&b).unwrap();
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    log.append(&mut b, NOW).unwrap();
    let mut c = make_batch(0, 2, NOW + 15, b"c");
    log.append(&mut c, NOW).unwrap();
    log.flush_all().unwrap();
    assert_eq!(log.max_timestamp(), Some((NOW + 19, 5)), "the batch view");
    assert_eq!(log.max_timestamp_record().unwrap(), Some((NOW + 19, 4)));
}
