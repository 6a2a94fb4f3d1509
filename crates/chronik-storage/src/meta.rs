//! `meta.properties`: the identity of a data directory (node id, cluster id), Kafka's format.
//!
//! ```text
//! version=1
//! node.id=1
//! cluster.id=<uuid>
//! ```

use crate::error::{IoContext, StorageError};
use crate::fsutil::write_atomic;
use std::path::Path;

pub const META_FILE: &str = "meta.properties";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub node_id: i32,
    pub cluster_id: String,
}

pub fn encode(m: &MetaProperties) -> String {
    format!(
        "version=1\nnode.id={}\ncluster.id={}\n",
        m.node_id, m.cluster_id
    )
}

pub fn decode(text: &str) -> Option<MetaProperties> {
    let mut node_id = None;
    let mut cluster_id = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        match line.split_once('=') {
            Some(("node.id", v)) => node_id = v.trim().parse().ok(),
            Some(("cluster.id", v)) => cluster_id = Some(v.trim().to_string()),
            _ => {}
        }
    }
    Some(MetaProperties {
        node_id: node_id?,
        cluster_id: cluster_id?,
    })
}

/// Loads `meta.properties`, or writes a new one for `node_id` if the directory has none.
/// Refuses a directory that belongs to another node.
pub fn load_or_init(dir: &Path, node_id: i32) -> Result<MetaProperties, StorageError> {
    let path = dir.join(META_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let m = decode(&text).ok_or_else(|| StorageError::Corrupt {
                path: path.clone(),
                reason: "malformed meta.properties".into(),
            })?;
            if m.node_id != node_id {
                return Err(StorageError::Corrupt {
                    path,
                    reason: format!("data dir belongs to node {}, not node {node_id}", m.node_id),
                });
            }
            Ok(m)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let m = MetaProperties {
                node_id,
                cluster_id: uuid::Uuid::new_v4().simple().to_string(),
            };
            write_atomic(&path, encode(&m).as_bytes())?;
            Ok(m)
        }
        Err(e) => Err(e).at(&path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        let m = MetaProperties {
            node_id: 3,
            cluster_id: "abc".into(),
        };
        assert_eq!(encode(&m), "version=1\nnode.id=3\ncluster.id=abc\n");
        assert_eq!(decode(&encode(&m)), Some(m));
    }
}
