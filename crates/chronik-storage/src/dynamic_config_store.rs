//! Durable dynamic configs (`dynamic-configs.json` on a single node; the same value lives in the
//! controller's metadata image in a cluster): broker configs set with AlterConfigs /
//! IncrementalAlterConfigs, per broker id or cluster-wide, and group configs (KIP-848).

use crate::error::{IoContext, StorageError};
use crate::fsutil::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const DYNAMIC_CONFIGS_FILE: &str = "dynamic-configs.json";
const FORMAT_VERSION: u32 = 1;

/// The name of the cluster-wide default broker resource (Kafka's `""` broker resource).
pub const CLUSTER_DEFAULT: &str = "";

/// Which kind of resource a set of dynamic configs belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DynamicResource {
    /// A broker by its id, or [`CLUSTER_DEFAULT`] for every broker.
    Broker,
    /// A consumer group by its id (it need not exist).
    Group,
}

type Configs = BTreeMap<String, String>;

/// Every dynamic config override, by resource name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicConfigs {
    #[serde(default)]
    pub brokers: BTreeMap<String, Configs>,
    #[serde(default)]
    pub groups: BTreeMap<String, Configs>,
}

impl DynamicConfigs {
    /// The overrides of one resource (empty when it has none).
    pub fn get(&self, resource: DynamicResource, name: &str) -> Configs {
        self.map(resource).get(name).cloned().unwrap_or_default()
    }

    /// Replaces the overrides of one resource; an empty map removes it.
    pub fn set(&mut self, resource: DynamicResource, name: &str, configs: Configs) {
        let map = match resource {
            DynamicResource::Broker => &mut self.brokers,
            DynamicResource::Group => &mut self.groups,
        };
        if configs.is_empty() {
            map.remove(name);
        } else {
            map.insert(name.to_string(), configs);
        }
    }

    /// The dynamic broker configs that apply to `node_id`: the cluster-wide defaults with the
    /// node's own overrides on top (Kafka's order of precedence).
    pub fn broker_effective(&self, node_id: i32) -> Configs {
        let mut out = self.get(DynamicResource::Broker, CLUSTER_DEFAULT);
        out.extend(self.get(DynamicResource::Broker, &node_id.to_string()));
        out
    }

    fn map(&self, resource: DynamicResource) -> &BTreeMap<String, Configs> {
        match resource {
            DynamicResource::Broker => &self.brokers,
            DynamicResource::Group => &self.groups,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct DynamicConfigsFile {
    version: u32,
    #[serde(flatten)]
    configs: DynamicConfigs,
}

pub fn encode(configs: &DynamicConfigs) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&DynamicConfigsFile {
        version: FORMAT_VERSION,
        configs: configs.clone(),
    })
}

pub fn decode(bytes: &[u8]) -> Result<DynamicConfigs, String> {
    let file: DynamicConfigsFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.version != FORMAT_VERSION {
        return Err(format!(
            "unsupported {DYNAMIC_CONFIGS_FILE} version {}",
            file.version
        ));
    }
    Ok(file.configs)
}

/// Reads the file; a data directory without one has no dynamic configs.
pub fn load(dir: &Path) -> Result<DynamicConfigs, StorageError> {
    let path = dir.join(DYNAMIC_CONFIGS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes).map_err(|reason| StorageError::Corrupt { path, reason }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DynamicConfigs::default()),
        Err(e) => Err(e).at(&path),
    }
}

/// Replaces the file atomically (temp file, fsync, rename, fsync of the directory).
pub fn store(dir: &Path, configs: &DynamicConfigs) -> Result<(), StorageError> {
    let path = dir.join(DYNAMIC_CONFIGS_FILE);
    let bytes = encode(configs).map_err(|e| StorageError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(&path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(k: &str, v: &str) -> Configs {
        BTreeMap::from([(k.to_string(), v.to_string())])
    }

    #[test]
    fn golden_bytes() {
        let mut c = DynamicConfigs::default();
        c.set(
            DynamicResource::Broker,
            CLUSTER_DEFAULT,
            one("log.retention.ms", "3600000"),
        );
        c.set(DynamicResource::Broker, "1", one("background.threads", "9"));
        c.set(
            DynamicResource::Group,
            "orders-app",
            one("consumer.session.timeout.ms", "50000"),
        );
        let bytes = encode(&c).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"version":1,"brokers":{"":{"log.retention.ms":"3600000"},"1":{"background.threads":"9"}},"groups":{"orders-app":{"consumer.session.timeout.ms":"50000"}}}"#
        );
        assert_eq!(decode(&bytes).unwrap(), c);
    }

    #[test]
    fn a_broker_override_wins_over_the_cluster_default() {
        let mut c = DynamicConfigs::default();
        c.set(
            DynamicResource::Broker,
            CLUSTER_DEFAULT,
            BTreeMap::from([
                ("log.retention.ms".to_string(), "1000".to_string()),
                ("log.segment.bytes".to_string(), "2048".to_string()),
            ]),
        );
        c.set(
            DynamicResource::Broker,
            "2",
            one("log.retention.ms", "5000"),
        );
        let on2 = c.broker_effective(2);
        assert_eq!(on2["log.retention.ms"], "5000");
        assert_eq!(on2["log.segment.bytes"], "2048");
        assert_eq!(c.broker_effective(1)["log.retention.ms"], "1000");
    }

    #[test]
    fn setting_no_configs_removes_the_resource() {
        let mut c = DynamicConfigs::default();
        c.set(
            DynamicResource::Group,
            "g",
            one("consumer.session.timeout.ms", "50000"),
        );
        c.set(DynamicResource::Group, "g", Configs::new());
        assert_eq!(c, DynamicConfigs::default());
    }

    #[test]
    fn missing_file_is_empty_and_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), DynamicConfigs::default());
        let mut c = DynamicConfigs::default();
        c.set(
            DynamicResource::Broker,
            "",
            one("log.cleanup.policy", "compact"),
        );
        store(dir.path(), &c).unwrap();
        assert_eq!(load(dir.path()).unwrap(), c);
    }
}
