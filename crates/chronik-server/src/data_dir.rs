//! The data directory: created if missing, probed for writability, and locked so that two
//! servers never share it.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::path::Path;

pub const LOCK_FILE: &str = ".lock";

/// Creates, probes and locks `dir`. The lock lasts as long as the returned file is open.
pub fn prepare(dir: &Path) -> Result<File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("data dir {} is not writable", dir.display()))?;
    std::fs::remove_file(&probe)
        .with_context(|| format!("data dir {} is not writable", dir.display()))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!(
                "data dir {} is locked by another running chronik-server",
                dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = prepare(dir.path()).unwrap();
        let err = prepare(dir.path()).unwrap_err().to_string();
        assert!(err.contains("locked"), "{err}");
    }
}
