//! Log compaction: latest record per key with offsets preserved, tombstones kept for
//! `delete.retention.ms`, compressed batches re-encoded with their codec, and crash safety of
//! the `.cleaned`/`.swap` files.

use super::*;
use crate::cleaner::{clean, CLEANED_SUFFIX};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const NOW: i64 = 1_700_000_000_000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// One batch of (key, value) records; `None` value = tombstone.
fn keyed(records: &[(&str, Option<&str>)], compression: Compression) -> Vec<u8> {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: NOW,
            key: Some(Bytes::from(k.to_string())),
            value: v.map(|v| Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        recs.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.to_vec()
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        cleanup_compact: true,
        cleanup_delete: false,
        ..LogConfig::default()
    }
}

/// (offset, key, value) of everything readable.
fn contents(log: &PartitionLog) -> Vec<(Offset, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let Some(slice) = log.read_slice(offset).unwrap() else {
            break;
        };
        let data = read_batches(&slice, log.high_watermark(), 1 << 20, true).unwrap();
        let mut bytes = Bytes::from(data);
        while !bytes.is_empty() {
            for r in RecordBatchDecoder::decode(&mut bytes).unwrap().records {
                let s = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                out.push((r.offset, s(r.key).unwrap(), s(r.value)));
                offset = r.offset + 1;
            }
        }
    }
    out
}

fn compact(log: &mut PartitionLog, now: i64) -> usize {
    let input = log.compaction_input(now).expect("something to compact");
    let cleaned = clean(&input).unwrap();
    log.install_cleaned(&input, cleaned, now).unwrap()
}

fn fill_versions(log: &mut PartitionLog, rounds: usize, compression: Compression) {
    for round in 0..rounds {
        let v0 = format!("a{round}");
        let v1 = format!("b{round}");
        let mut b = keyed(&[("k0", Some(&v0)), ("k1", Some(&v1))], compression);
        log.append(&mut b, NOW).unwrap();
    }
    log.flush_all().unwrap();
}

#[test]
fn only_the_latest_record_per_key_remains_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), config(), 0, 0, NOW).unwrap();
    fill_versions(&mut log, 10, Compression::None);
    let end = log.log_end_offset();
    assert!(compact(&mut log, NOW) > 0);
    let got = contents(&log);
    // Closed segments keep one record per key at most; the active segment is untouched.
    let k0: Vec<_> = got.iter().filter(|(_, k, _)| k == "k0").collect();
    assert_eq!(k0.last().map(|r| r.2.clone()), Some(Some("a9".to_string())));
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets stay in order"
    );
    assert!(got.len() < 20, "{} records left", got.len());
    assert_eq!(
        log.log_end_offset(),
        end,
        "compaction never changes the log end"
    );
    // The latest value of every key is still there, at its original offset.
    assert!(got.contains(&(end - 2, "k0".into(), Some("a9".into()))));
    assert!(got.contains(&(end - 1, "k1".into(), Some("b9".into()))));
    assert!(
        log.compaction_input(NOW).is_none(),
        "nothing new to compact"
    );
}

#[test]
fn compressed_batches_keep_their_codec() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), config(), 0, 0, NOW).unwrap();
    fill_versions(&mut log, 10, Compression::Gzip);
    compact(&mut log, NOW);
    let slice = log.read_slice(0).unwrap().unwrap();
    let data = read_batches(&slice, log.high_watermark(), 1 << 20, true).unwrap();
    let set = RecordBatchDecoder::decode(&mut Bytes::from(data)).unwrap();
    assert_eq!(set.compression, Compression::Gzip);
    let values: Vec<_> = contents(&log)
        .into_iter()
        .filter(|(_, k, _)| k == "k1")
        .map(|r| r.2)
        .collect();
    assert_eq!(values.last(), Some(&Some("b9".to_string())));
}

#[test]
fn tombstones_are_kept_for_delete_retention_then_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), config(), 0, 0, NOW).unwrap();
    let mut b = keyed(
        &[("gone", Some("x")), ("stays", Some("y"))],
        Compression::None,
    );
    log.append(&mut b, NOW).unwrap();
    let mut t = keyed(&[("gone", None)], Compression::None);
    log.append(&mut t, NOW).unwrap();
    fill_versions(&mut log, 10, Compression::None); // roll the tombstone into a closed segment
    compact(&mut log, NOW + 1000);
    let got = contents(&log);
    assert!(
        got.iter().any(|r| r.1 == "gone" && r.2.is_none()),
        "tombstone kept within delete.retention.ms"
    );
    assert!(
        !got.iter().any(|r| r.1 == "gone" && r.2.is_some()),
        "the deleted value is gone"
    );
    let mut more = keyed(&[("k2", Some("z"))], Compression::None);
    log.roll(NOW).unwrap();
    log.append(&mut more, NOW).unwrap();
    log.flush_all().unwrap();
    compact(&mut log, NOW + DAY_MS + 1);
    let got = contents(&log);
    assert!(
        !got.iter().any(|r| r.1 == "gone"),
        "tombstone dropped after delete.retention.ms"
    );
    assert!(got.iter().any(|r| r.1 == "stays"));
}

#[test]
fn an_interrupted_compaction_leaves_a_valid_log() {
    for stage in ["cleaned", "swap-with-old", "swap-only"] {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(), 0, 0, NOW).unwrap();
        fill_versions(&mut log, 10, Compression::None);
        let before = contents(&log);
        let input = log.compaction_input(NOW).unwrap();
        let cleaned = clean(&input).unwrap();
        let first = cleaned.first().unwrap().clone();
        drop(log);
        let stem = crate::segment::file_stem(first.base_offset);
        let swap = dir.path().join(format!("{stem}{SWAP_SUFFIX}"));
        let log_path = dir.path().join(format!("{stem}{LOG_SUFFIX}"));
        match stage {
            "cleaned" => assert!(first
                .cleaned_path
                .to_string_lossy()
                .ends_with(CLEANED_SUFFIX)),
            "swap-with-old" => std::fs::rename(&first.cleaned_path, &swap).unwrap(),
            _ => {
                std::fs::rename(&first.cleaned_path, &swap).unwrap();
                std::fs::remove_file(&log_path).unwrap();
            }
        }
        for c in cleaned.iter().skip(1) {
            std::fs::remove_file(&c.cleaned_path).unwrap();
        }
        let (log, _) = PartitionLog::open(dir.path(), config(), 0, 0, NOW).unwrap();
        let after = contents(&log);
        // Whatever the stage, every key's latest value is there and nothing is invented.
        for key in ["k0", "k1"] {
            let last = |rs: &Vec<(Offset, String, Option<String>)>| {
                rs.iter().rfind(|r| r.1 == key).cloned()
            };
            assert_eq!(last(&after), last(&before), "stage {stage}");
        }
        assert!(
            after.iter().all(|r| before.contains(r)),
            "stage {stage}: only records that were there"
        );
        assert!(
            !swap.exists() && !first.cleaned_path.exists(),
            "stage {stage}: leftovers removed"
        );
    }
}

/// A transactional batch of `producer_id` with one keyed record.
fn txn_keyed(producer_id: i64, seq: i32, key: &str, value: &str) -> Vec<u8> {
    use crate::batch_builder::{build, Producer};
    let producer = Producer {
        id: producer_id,
        epoch: 0,
        base_sequence: seq,
    };
    build(
        1 << 4,
        producer,
        &[(Some(key.as_bytes()), Some(value.as_bytes()))],
        NOW,
    )
}

fn marker(producer_id: i64, control: crate::control::ControlType) -> Vec<u8> {
    crate::control::marker_batch(
        &crate::control::TxnMarker {
            producer_id,
            producer_epoch: 0,
            control,
            coordinator_epoch: 0,
        },
        NOW,
    )
}

#[test]
fn an_aborted_value_never_replaces_a_committed_one_and_open_transactions_wait() {
    use crate::control::ControlType;
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), config(), 0, 0, NOW).unwrap();
    log.append(
        &mut keyed(&[("kx", Some("committed"))], Compression::None),
        NOW,
    )
    .unwrap();
    log.append(&mut txn_keyed(8, 0, "kx", "aborted"), NOW)
        .unwrap();
    assert!(
        log.compaction_input(NOW).is_none(),
        "nothing is compacted while a transaction is open"
    );
    log.append(&mut marker(8, ControlType::Abort), NOW).unwrap();
    fill_versions(&mut log, 6, Compression::None); // closes the segments above
    compact(&mut log, NOW);
    let kx: Vec<_> = contents(&log)
        .into_iter()
        .filter(|(_, k, _)| k == "kx")
        .map(|r| r.2)
        .collect();
    assert_eq!(
        kx,
        vec![Some("committed".to_string())],
        "the committed value stays, the aborted one is removed"
    );
}
