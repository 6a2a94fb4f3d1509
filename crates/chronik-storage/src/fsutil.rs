//! File-system helpers: durable replacement of small files and directory fsync.

use crate::error::{IoContext, StorageError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// fsyncs a directory so that creations, renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).at(dir)?.sync_all().at(dir)
}

/// Replaces `path` with `bytes` atomically and durably: write a temp file, fsync it, rename it
/// over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(tmp)
        .at(tmp)?;
    f.write_all(bytes).at(tmp)?;
    f.sync_all().at(tmp)?;
    drop(f);
    std::fs::rename(tmp, path).at(path)?;
    sync_dir(dir)
}
