//! Durable topic metadata: `topics.json` in the data directory, replaced atomically.
//!
//! ```json
//! {"version":1,"topics":[{"name":"orders","topic_id":"<uuid>","partitions":4,"configs":{"retention.ms":"1000"}}]}
//! ```

use crate::error::{IoContext, StorageError};
use crate::fsutil::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const TOPICS_FILE: &str = "topics.json";
const FORMAT_VERSION: u32 = 1;

/// One topic's durable metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub partitions: i32,
    /// Config overrides (Kafka names), validated before they are stored.
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TopicsFile {
    version: u32,
    topics: Vec<TopicRecord>,
}

pub fn encode(topics: &BTreeMap<String, TopicRecord>) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&TopicsFile {
        version: FORMAT_VERSION,
        topics: topics.values().cloned().collect(),
    })
}

pub fn decode(bytes: &[u8]) -> Result<BTreeMap<String, TopicRecord>, String> {
    let file: TopicsFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.version != FORMAT_VERSION {
        return Err(format!("unsupported topics.json version {}", file.version));
    }
    Ok(file
        .topics
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect())
}

pub fn load(dir: &Path) -> Result<BTreeMap<String, TopicRecord>, StorageError> {
    let path = dir.join(TOPICS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes).map_err(|reason| StorageError::Corrupt { path, reason }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).at(&path),
    }
}

pub fn store(dir: &Path, topics: &BTreeMap<String, TopicRecord>) -> Result<(), StorageError> {
    let path = dir.join(TOPICS_FILE);
    let bytes = encode(topics).map_err(|e| StorageError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(&path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        let t = TopicRecord {
            name: "orders".into(),
            topic_id: uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            partitions: 4,
            configs,
        };
        let mut m = BTreeMap::new();
        m.insert(t.name.clone(), t);
        let bytes = encode(&m).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"version":1,"topics":[{"name":"orders","topic_id":"01234567-89ab-cdef-0123-456789abcdef","partitions":4,"configs":{"retention.ms":"1000"}}]}"#
        );
        assert_eq!(decode(&bytes).unwrap(), m);
    }
}
