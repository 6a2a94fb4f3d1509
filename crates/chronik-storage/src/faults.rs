//! `FaultyFileSystem`: the real file system with injected disk faults, for tests and (behind an
//! explicit test-only setting) the real binary: failing fsyncs (EIO), a full disk (ENOSPC, with
//! an optional torn prefix that still lands), slow fsyncs, and a simulated crash that loses what
//! was not fsynced.

use crate::fs::{FileSystem, LogFile, RealFileSystem};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

/// Linux errno values the injected faults carry.
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// Which faults are active now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Every `sync_data` fails with EIO.
    pub fail_syncs: bool,
    /// Every write fails with ENOSPC.
    pub disk_full: bool,
    /// With `disk_full`: bytes of a failing write that still reach the file (a torn write).
    pub torn_write_bytes: usize,
    /// Added to every `sync_data`.
    pub sync_delay_ms: u64,
    /// `sync_data` only records what is durable (for `crash`) without asking the disk: the
    /// simulator models durability itself and must not depend on the disk's speed.
    pub modelled_sync: bool,
}

#[derive(Debug, Default)]
struct Shared {
    plan: Mutex<FaultPlan>,
    files: Mutex<Vec<Weak<FaultyFile>>>,
}

impl Shared {
    fn plan(&self) -> FaultPlan {
        self.plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Debug, Clone, Default)]
pub struct FaultyFileSystem {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn LogFile>,
    path: PathBuf,
    shared: Arc<Shared>,
    /// Length that is durable (at the last successful sync).
    synced_len: AtomicU64,
}

impl FaultyFileSystem {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        *self
            .shared
            .plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = plan;
    }

    pub fn plan(&self) -> FaultPlan {
        self.shared.plan()
    }

    /// Simulates power loss: each open file keeps what was fsynced plus
    /// `keep_unsynced(path, unsynced_bytes)` bytes of what was written after.
    pub fn crash(&self, keep_unsynced: impl Fn(&Path, u64) -> u64) -> io::Result<()> {
        let files: Vec<Arc<FaultyFile>> = self
            .shared
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for f in files {
            let len = f.inner.size_bytes()?;
            let synced = f.synced_len.load(Ordering::SeqCst).min(len);
            let keep = keep_unsynced(&f.path, len - synced).min(len - synced);
            f.inner.set_len(synced + keep)?;
        }
        Ok(())
    }
}

impl FileSystem for FaultyFileSystem {
    fn open_log(&self, path: &Path, create: bool) -> io::Result<Arc<dyn LogFile>> {
        let inner = RealFileSystem.open_log(path, create)?;
        let len = inner.size_bytes()?;
        let file = Arc::new(FaultyFile {
            inner,
            path: path.to_path_buf(),
            shared: Arc::clone(&self.shared),
            synced_len: AtomicU64::new(len),
        });
        let mut files = self
            .shared
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        files.retain(|w| w.strong_count() > 0);
        files.push(Arc::downgrade(&file));
        Ok(file)
    }
}

impl LogFile for FaultyFile {
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let plan = self.shared.plan();
        if plan.disk_full {
            let torn = buf
                .get(..plan.torn_write_bytes.min(buf.len()))
                .unwrap_or_default();
            if !torn.is_empty() {
                self.inner.write_all_at(torn, pos)?;
            }
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        self.inner.write_all_at(buf, pos)
    }
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        let plan = self.shared.plan();
        if plan.sync_delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(plan.sync_delay_ms));
        }
        if plan.fail_syncs {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        if !plan.modelled_sync {
            self.inner.sync_data()?;
        }
        self.synced_len
            .store(self.inner.size_bytes()?, Ordering::SeqCst);
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        self.synced_len.fetch_min(len, Ordering::SeqCst);
        Ok(())
    }
    fn size_bytes(&self) -> io::Result<u64> {
        self.inner.size_bytes()
    }
}
