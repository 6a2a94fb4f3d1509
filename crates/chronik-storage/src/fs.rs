//! The file layer under the segment logs: a `FileSystem` that opens `LogFile`s. `RealFileSystem`
//! is the operating system; `FaultyFileSystem` (in `faults`) injects disk faults for tests and,
//! behind an explicit test-only setting, for the real binary.
//!
//! Contract of a `LogFile` (what recovery and the group commit rely on):
//! - `write_all_at` either writes all bytes or returns an error; after an error, any prefix of
//!   the bytes may be in the file (a torn write).
//! - Data written is durable only after `sync_data` returned `Ok`. After a `sync_data` error the
//!   file's durable content is unknown; the caller must never retry and treat it as durable.
//! - A crash may lose everything written after the last successful `sync_data`.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// One file of a segment log.
pub trait LogFile: Send + Sync + Debug {
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    fn sync_data(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn size_bytes(&self) -> io::Result<u64>;
}

/// Opens log files.
pub trait FileSystem: Send + Sync + Debug {
    /// Opens `path` for reading and writing; `create` makes a new empty file (truncating).
    fn open_log(&self, path: &Path, create: bool) -> io::Result<Arc<dyn LogFile>>;
}

/// The operating system's files.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFileSystem;

#[derive(Debug)]
struct RealFile(File);

impl LogFile for RealFile {
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.0, buf, pos)
    }
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.0, buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn size_bytes(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl FileSystem for RealFileSystem {
    fn open_log(&self, path: &Path, create: bool) -> io::Result<Arc<dyn LogFile>> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(true);
        if create {
            opts.create(true).truncate(true);
        }
        Ok(Arc::new(RealFile(opts.open(path)?)))
    }
}

/// The file system used when none is given.
pub fn real() -> Arc<dyn FileSystem> {
    Arc::new(RealFileSystem)
}
