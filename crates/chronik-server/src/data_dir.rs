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

/// The file recording which node of which voter set a data dir belongs to (cluster mode).
pub const CLUSTER_FILE: &str = "cluster.json";

/// On the first start in cluster mode, records this node's id and the voters' ids; on later
/// starts refuses a different node id or a different voter set (addresses may change).
pub fn check_membership(
    dir: &Path,
    node_id: u64,
    voters: &std::collections::BTreeMap<u64, String>,
) -> Result<()> {
    let path = dir.join(CLUSTER_FILE);
    let ids: Vec<u64> = voters.keys().copied().collect();
    match std::fs::read(&path) {
        Ok(bytes) => {
            let stored: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not valid JSON", path.display()))?;
            let stored_id = stored.get("node_id").and_then(serde_json::Value::as_u64);
            if stored_id != Some(node_id) {
                bail!(
                    "data dir {} belongs to node {stored_id:?}, not node {node_id}",
                    dir.display()
                );
            }
            let stored_voters: Vec<u64> = stored
                .get("voters")
                .and_then(serde_json::Value::as_array)
                .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
                .unwrap_or_default();
            if stored_voters != ids {
                bail!(
                    "the peer list names voters {ids:?} but data dir {} was formed with voters {stored_voters:?}",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let body = serde_json::json!({ "node_id": node_id, "voters": ids });
            chronik_storage::fsutil::write_atomic(&path, body.to_string().as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
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

    #[test]
    fn membership_is_recorded_then_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let voters: std::collections::BTreeMap<u64, String> =
            [(1, "a:1".into()), (2, "b:1".into()), (3, "c:1".into())].into();
        check_membership(dir.path(), 1, &voters).unwrap();
        // Golden bytes: docs/formats/cluster-metadata.md shows this file.
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CLUSTER_FILE)).unwrap(),
            r#"{"node_id":1,"voters":[1,2,3]}"#
        );
        check_membership(dir.path(), 1, &voters).unwrap();
        let err = check_membership(dir.path(), 2, &voters)
            .unwrap_err()
            .to_string();
        assert!(err.contains("belongs to node"), "{err}");
        let mut other = voters.clone();
        other.insert(4, "d:1".into());
        let err = check_membership(dir.path(), 1, &other)
            .unwrap_err()
            .to_string();
        assert!(err.contains("formed with voters"), "{err}");
    }
}
