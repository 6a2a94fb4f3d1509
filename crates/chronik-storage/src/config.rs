//! Topic-level log configuration under Kafka's names, with Kafka's defaults and validation.

use chronik_types::limits::{
    MESSAGE_BYTES_DEFAULT, RETENTION_BYTES_DEFAULT, RETENTION_MS_DEFAULT, SEGMENT_BYTES_DEFAULT,
    SEGMENT_BYTES_MIN, SEGMENT_MS_DEFAULT,
};
use std::collections::BTreeMap;

/// Kafka's `delete.retention.ms` default (1 day).
pub const DELETE_RETENTION_MS_DEFAULT: i64 = 24 * 60 * 60 * 1000;

/// How record timestamps are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A topic config Chronik knows: its Kafka name and default value.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Long { min: i64 },
    Int { min: i64 },
    OneOf(&'static [&'static str]),
    List(&'static [&'static str]),
}

/// Every topic config Chronik accepts. Values that the single-node log does not act on yet are
/// still validated and stored so clients can set and read them.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        name: "cleanup.policy",
        default: "delete",
        kind: Kind::List(&["delete", "compact"]),
    },
    ConfigDef {
        name: "compression.type",
        default: "producer",
        kind: Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
    },
    ConfigDef {
        name: "delete.retention.ms",
        default: "86400000",
        kind: Kind::Long { min: 0 },
    },
    ConfigDef {
        name: "file.delete.delay.ms",
        default: "60000",
        kind: Kind::Long { min: 0 },
    },
    ConfigDef {
        name: "flush.messages",
        default: "9223372036854775807",
        kind: Kind::Long { min: 1 },
    },
    ConfigDef {
        name: "flush.ms",
        default: "9223372036854775807",
        kind: Kind::Long { min: 0 },
    },
    ConfigDef {
        name: "index.interval.bytes",
        default: "4096",
        kind: Kind::Int { min: 0 },
    },
    ConfigDef {
        name: "max.compaction.lag.ms",
        default: "9223372036854775807",
        kind: Kind::Long { min: 1 },
    },
    ConfigDef {
        name: "max.message.bytes",
        default: "1048588",
        kind: Kind::Int { min: 0 },
    },
    ConfigDef {
        name: "message.timestamp.after.max.ms",
        default: "9223372036854775807",
        kind: Kind::Long { min: 0 },
    },
    ConfigDef {
        name: "message.timestamp.before.max.ms",
        default: "9223372036854775807",
        kind: Kind::Long { min: 0 },
    },
    ConfigDef {
        name: "message.timestamp.type",
        default: "CreateTime",
        kind: Kind::OneOf(&["CreateTime", "LogAppendTime"]),
    },
    ConfigDef {
        name: "min.cleanable.dirty.ratio",
        default: "0.5",
        kind: Kind::OneOf(&[]),
    },
    ConfigDef {
        name: "min.compaction.lag.ms",
        default: "0",
        kind: Kind::Long { min: 0 },
    },
    ConfigDef {
        name: "min.insync.replicas",
        default: "1",
        kind: Kind::Int { min: 1 },
    },
    ConfigDef {
        name: "retention.bytes",
        default: "-1",
        kind: Kind::Long { min: -1 },
    },
    ConfigDef {
        name: "retention.ms",
        default: "604800000",
        kind: Kind::Long { min: -1 },
    },
    ConfigDef {
        name: "segment.bytes",
        default: "1073741824",
        kind: Kind::Int {
            min: SEGMENT_BYTES_MIN,
        },
    },
    ConfigDef {
        name: "segment.index.bytes",
        default: "10485760",
        kind: Kind::Int { min: 4 },
    },
    ConfigDef {
        name: "segment.jitter.ms",
        default: "0",
        kind: Kind::Long { min: 0 },
    },
    ConfigDef {
        name: "segment.ms",
        default: "604800000",
        kind: Kind::Long { min: 1 },
    },
    ConfigDef {
        name: "unclean.leader.election.enable",
        default: "false",
        kind: Kind::OneOf(&["true", "false"]),
    },
];

/// Each topic config with the broker config that is its default (Kafka's synonyms): a dynamic
/// broker config of that name, per broker or cluster-wide, applies to every topic that does not
/// override it.
pub const BROKER_SYNONYMS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("compression.type", "compression.type"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("file.delete.delay.ms", "log.segment.delete.delay.ms"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"),
    ("max.message.bytes", "message.max.bytes"),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
    ),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
    ),
    ("message.timestamp.type", "log.message.timestamp.type"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("segment.jitter.ms", "log.roll.jitter.ms"),
    ("segment.ms", "log.roll.ms"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

/// The broker config that is the default of `topic_config`.
pub fn broker_synonym(topic_config: &str) -> Option<&'static str> {
    BROKER_SYNONYMS
        .iter()
        .find(|(t, _)| *t == topic_config)
        .map(|(_, b)| *b)
}

/// The topic config whose default the broker config `broker_config` is.
pub fn topic_config_for(broker_config: &str) -> Option<&'static str> {
    BROKER_SYNONYMS
        .iter()
        .find(|(_, b)| *b == broker_config)
        .map(|(t, _)| *t)
}

/// A topic's configs over the broker-level defaults: `broker` (dynamic broker configs under
/// their broker names) turned into topic configs, with the topic's `overrides` on top.
pub fn with_broker_defaults(
    broker: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = broker
        .iter()
        .filter_map(|(k, v)| topic_config_for(k).map(|t| (t.to_string(), v.clone())))
        .collect();
    out.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

impl ConfigDef {
    /// Kafka's `ConfigType` code for DescribeConfigs v3+ (INT 3, LONG 5, DOUBLE 6, LIST 7, STRING 2, BOOLEAN 1).
    pub fn type_code(&self) -> i8 {
        match self.kind {
            Kind::Int { .. } => 3,
            Kind::Long { .. } => 5,
            Kind::OneOf([]) => 6,
            Kind::OneOf(["true", "false"]) => 1,
            Kind::OneOf(_) => 2,
            Kind::List(_) => 7,
        }
    }

    /// Whether the value is a list (APPEND/SUBTRACT apply).
    pub fn is_list(&self) -> bool {
        matches!(self.kind, Kind::List(_))
    }
}

/// A rejected config entry, with Kafka's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid value {value} for configuration {name}: {reason}")]
pub struct InvalidConfig {
    pub name: String,
    pub value: String,
    pub reason: String,
}

pub fn config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one `name=value` against its definition.
pub fn validate_entry(name: &str, value: &str) -> Result<(), InvalidConfig> {
    let bad = |reason: String| InvalidConfig {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    let def = config_def(name).ok_or_else(|| bad("Unknown topic config name".into()))?;
    match def.kind {
        Kind::Long { min } | Kind::Int { min } => {
            let v: i64 = value
                .trim()
                .parse()
                .map_err(|_| bad("Not a number".into()))?;
            if v < min {
                return Err(bad(format!("Value must be at least {min}")));
            }
            if matches!(def.kind, Kind::Int { .. }) && i32::try_from(v).is_err() {
                return Err(bad("Value must fit in an int".into()));
            }
        }
        Kind::OneOf([]) => {
            value
                .trim()
                .parse::<f64>()
                .map_err(|_| bad("Not a number".into()))?;
        }
        Kind::OneOf(allowed) => {
            if !allowed.contains(&value.trim()) {
                return Err(bad(format!(
                    "String must be one of: {}",
                    allowed.join(", ")
                )));
            }
        }
        Kind::List(allowed) => {
            let ok = value
                .split(',')
                .map(str::trim)
                .all(|v| allowed.contains(&v));
            if !ok || value.trim().is_empty() {
                return Err(bad(format!("Values must be from: {}", allowed.join(", "))));
            }
        }
    }
    Ok(())
}

/// The effective log configuration of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: i64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub max_message_bytes: i32,
    pub timestamp_type: TimestampType,
    /// `cleanup.policy` contains `delete`: old segments go by `retention.ms`/`retention.bytes`.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: only the latest record per key is kept.
    pub cleanup_compact: bool,
    /// `delete.retention.ms`: how long a tombstone is kept after compaction reaches it.
    pub delete_retention_ms: i64,
    /// `min.insync.replicas`: in a cluster, acks=all needs at least this many in-sync replicas.
    pub min_insync_replicas: i32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            segment_ms: SEGMENT_MS_DEFAULT,
            retention_ms: RETENTION_MS_DEFAULT,
            retention_bytes: RETENTION_BYTES_DEFAULT,
            max_message_bytes: MESSAGE_BYTES_DEFAULT,
            timestamp_type: TimestampType::CreateTime,
            cleanup_delete: true,
            cleanup_compact: false,
            delete_retention_ms: DELETE_RETENTION_MS_DEFAULT,
            min_insync_replicas: 1,
        }
    }
}

impl LogConfig {
    /// Builds the effective config from a topic's overrides (already validated).
    pub fn from_overrides(overrides: &BTreeMap<String, String>) -> Self {
        let mut c = Self::default();
        let long = |k: &str, d: i64| {
            overrides
                .get(k)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(d)
        };
        c.segment_bytes = long("segment.bytes", c.segment_bytes);
        c.segment_ms = long("segment.ms", c.segment_ms);
        c.retention_ms = long("retention.ms", c.retention_ms);
        c.retention_bytes = long("retention.bytes", c.retention_bytes);
        c.max_message_bytes =
            i32::try_from(long("max.message.bytes", i64::from(c.max_message_bytes)))
                .unwrap_or(MESSAGE_BYTES_DEFAULT);
        if overrides.get("message.timestamp.type").map(|s| s.trim()) == Some("LogAppendTime") {
            c.timestamp_type = TimestampType::LogAppendTime;
        }
        if let Some(policy) = overrides.get("cleanup.policy") {
            let has = |p: &str| policy.split(',').any(|v| v.trim() == p);
            c.cleanup_delete = has("delete");
            c.cleanup_compact = has("compact");
        }
        c.delete_retention_ms = long("delete.retention.ms", c.delete_retention_ms);
        c.min_insync_replicas = i32::try_from(long("min.insync.replicas", 1)).unwrap_or(i32::MAX);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_kafka() {
        assert!(validate_entry("retention.ms", "-1").is_ok());
        assert!(validate_entry("retention.ms", "-2").is_err());
        assert!(validate_entry("segment.bytes", "abc").is_err());
        assert!(validate_entry("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_entry("cleanup.policy", "nope").is_err());
        assert!(validate_entry("no.such.config", "1").is_err());
        assert!(validate_entry("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(validate_entry("min.cleanable.dirty.ratio", "0.3").is_ok());
    }

    #[test]
    fn every_topic_config_has_a_broker_synonym() {
        for d in TOPIC_CONFIGS {
            assert!(broker_synonym(d.name).is_some(), "{}", d.name);
        }
        for (t, _) in BROKER_SYNONYMS {
            assert!(config_def(t).is_some(), "{t}");
        }
    }

    #[test]
    fn topic_overrides_win_over_broker_defaults() {
        let broker = BTreeMap::from([
            ("log.retention.ms".to_string(), "1000".to_string()),
            ("log.cleanup.policy".to_string(), "compact".to_string()),
            ("background.threads".to_string(), "9".to_string()),
        ]);
        let topic = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        let merged = with_broker_defaults(&broker, &topic);
        assert_eq!(
            merged,
            BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("retention.ms".to_string(), "5".to_string()),
            ])
        );
    }

    #[test]
    fn overrides_apply() {
        let mut o = BTreeMap::new();
        o.insert("segment.bytes".to_string(), "1000".to_string());
        o.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        let c = LogConfig::from_overrides(&o);
        assert_eq!(c.segment_bytes, 1000);
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
    }
}
