//! The offline check (`chronik-server check --data-dir DIR`): verifies every segment (CRC of
//! every batch, offset order), every index against the segment it indexes, and every
//! checkpoint and metadata file, without changing anything.

use crate::fs::{FileSystem, RealFileSystem};
use crate::index::{parse_offset_index, parse_time_index};
use crate::recovery::{scan_segment, ScanStop};
use crate::segment::{file_stem, index_entries_for, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::{checkpoint, meta, topic_store};
use chronik_types::Offset;
use std::path::{Path, PathBuf};

/// One problem found, with the file it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
    pub problem: String,
}

/// What the check looked at and what it found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub partitions: usize,
    pub segments: usize,
    pub batches: usize,
    pub findings: Vec<Finding>,
}

impl CheckReport {
    fn find(&mut self, path: &Path, problem: impl Into<String>) {
        self.findings.push(Finding {
            path: path.to_path_buf(),
            problem: problem.into(),
        });
    }
}

/// Checks a whole data directory.
pub fn check_data_dir(dir: &Path) -> CheckReport {
    let mut report = CheckReport::default();
    let meta_path = dir.join(meta::META_FILE);
    match std::fs::read_to_string(&meta_path) {
        Ok(text) if meta::decode(&text).is_some() => {}
        Ok(_) => report.find(&meta_path, "malformed meta.properties"),
        Err(e) => report.find(&meta_path, format!("unreadable: {e}")),
    }
    let topics = match topic_store::load(dir) {
        Ok(t) => t,
        Err(e) => {
            report.find(&dir.join(topic_store::TOPICS_FILE), e.to_string());
            Default::default()
        }
    };
    for name in [
        checkpoint::RECOVERY_POINT_FILE,
        checkpoint::LOG_START_OFFSET_FILE,
    ] {
        if let Err(e) = checkpoint::read(&dir.join(name)) {
            report.find(&dir.join(name), e.to_string());
        }
    }
    let mut checked = std::collections::BTreeSet::new();
    for t in topics.values() {
        for p in 0..t.partitions {
            let pdir = dir.join(format!("{}-{p}", t.name));
            if !pdir.is_dir() {
                report.find(&pdir, "partition directory missing");
                continue;
            }
            report.partitions += 1;
            check_partition(&pdir, &mut report);
            checked.insert(pdir);
        }
    }
    // A cluster node keeps its topics in the replicated metadata, not in topics.json: every
    // other partition directory (`<topic>-<partition>`) is checked too.
    for pdir in partition_dirs(dir) {
        if !checked.contains(&pdir) {
            report.partitions += 1;
            check_partition(&pdir, &mut report);
        }
    }
    report
}

/// The directories of `dir` named like a partition's (`<topic>-<partition number>`), sorted.
fn partition_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                n.rsplit_once('-').is_some_and(|(topic, p)| {
                    !topic.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
                })
            })
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn segment_bases(dir: &Path) -> std::io::Result<Vec<Offset>> {
    let mut bases: Vec<Offset> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(LOG_SUFFIX)?
                .parse()
                .ok()
        })
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Checks one partition directory: every segment and its indexes.
pub fn check_partition(dir: &Path, report: &mut CheckReport) {
    let bases = match segment_bases(dir) {
        Ok(b) => b,
        Err(e) => return report.find(dir, format!("unreadable: {e}")),
    };
    let mut next_offset: Option<Offset> = None;
    for base in bases {
        report.segments += 1;
        let stem = file_stem(base);
        let log_path = dir.join(format!("{stem}{LOG_SUFFIX}"));
        let scan = RealFileSystem.open_log(&log_path, false).and_then(|f| {
            let len = f.size_bytes()?;
            scan_segment(f.as_ref(), len, base, true)
        });
        let scan = match scan {
            Ok(s) => s,
            Err(e) => {
                report.find(&log_path, format!("unreadable: {e}"));
                continue;
            }
        };
        report.batches += scan.batches.len();
        if let Some(expected) = next_offset.filter(|n| base < *n) {
            report.find(&log_path, format!("segment starts at offset {base}, before the previous segment ends ({expected})"));
        }
        next_offset = Some(scan.next_offset);
        if let Some(stop) = &scan.stop {
            // The indexes of a damaged segment are rebuilt with it; report the damage only.
            report.find(&log_path, describe(stop, &scan.batches));
            continue;
        }
        let (offsets, times, _) = index_entries_for(base, &scan.batches);
        let index_path = dir.join(format!("{stem}{INDEX_SUFFIX}"));
        match std::fs::read(&index_path) {
            Ok(bytes) => match parse_offset_index(&bytes, scan.valid_bytes) {
                Some(entries) if entries == offsets => {}
                Some(_) => report.find(&index_path, "offset index does not match the segment"),
                None => report.find(&index_path, "malformed offset index"),
            },
            Err(e) => report.find(&index_path, format!("unreadable: {e}")),
        }
        let time_path = dir.join(format!("{stem}{TIME_INDEX_SUFFIX}"));
        match std::fs::read(&time_path) {
            Ok(bytes) => match parse_time_index(&bytes) {
                Some(entries) if entries == times => {}
                Some(_) => report.find(&time_path, "time index does not match the segment"),
                None => report.find(&time_path, "malformed time index"),
            },
            Err(e) => report.find(&time_path, format!("unreadable: {e}")),
        }
    }
}

fn describe(stop: &ScanStop, batches: &[(u64, crate::batch::BatchHeader)]) -> String {
    let after = batches
        .last()
        .map_or("at the start of the segment".to_string(), |(_, h)| {
            format!("after offset {}", h.last_offset())
        });
    match stop {
        ScanStop::TornTail { position, bytes_left } => {
            format!("torn batch at position {position} ({bytes_left} bytes left), {after}")
        }
        ScanStop::InvalidBatch { position, reason } => format!("invalid batch at position {position} {after}: {reason}"),
        ScanStop::OffsetsOutOfOrder {
            position,
            base_offset,
            expected_at_least,
        } => format!("batch at position {position} has base offset {base_offset}, expected at least {expected_at_least}"),
    }
}
