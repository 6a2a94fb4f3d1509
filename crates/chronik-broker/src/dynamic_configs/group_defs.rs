//! Group configs (KIP-848; DescribeConfigs / IncrementalAlterConfigs resource type GROUP, 32):
//! Kafka 4.x's names, defaults and bounds. They are stored and described per group id (the
//! group need not exist); Chronik's groups use the classic protocol, which these configs do not
//! govern (they apply to the consumer, share and streams group protocols).

use super::defs::{DynamicConfigDef, ValueKind};
use chronik_storage::config::InvalidConfig;

pub const GROUP_CONFIGS: &[DynamicConfigDef] = &[
    bounded("consumer.session.timeout.ms", "45000", 45_000, 60_000),
    bounded("consumer.heartbeat.interval.ms", "5000", 5_000, 15_000),
    bounded("share.session.timeout.ms", "45000", 45_000, 60_000),
    bounded("share.heartbeat.interval.ms", "5000", 5_000, 15_000),
    bounded("share.record.lock.duration.ms", "30000", 15_000, 60_000),
    DynamicConfigDef {
        name: "share.auto.offset.reset",
        default: Some("latest"),
        kind: ValueKind::OneOf(&["latest", "earliest"]),
    },
    DynamicConfigDef {
        name: "share.isolation.level",
        default: Some("read_uncommitted"),
        kind: ValueKind::OneOf(&["read_committed", "read_uncommitted"]),
    },
    bounded("streams.session.timeout.ms", "45000", 45_000, 60_000),
    bounded("streams.heartbeat.interval.ms", "5000", 5_000, 15_000),
    bounded("streams.num.standby.replicas", "0", 0, 2),
];

const fn bounded(
    name: &'static str,
    default: &'static str,
    min: i64,
    max: i64,
) -> DynamicConfigDef {
    DynamicConfigDef {
        name,
        default: Some(default),
        kind: ValueKind::Int { min, max },
    }
}

pub fn group_config(name: &str) -> Option<&'static DynamicConfigDef> {
    GROUP_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one `name=value` of a group resource.
pub fn validate(name: &str, value: &str) -> Result<(), InvalidConfig> {
    match group_config(name) {
        Some(def) => def.validate(value),
        None => Err(InvalidConfig {
            name: name.to_string(),
            value: value.to_string(),
            reason: "Unknown group config name".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_kafkas() {
        assert!(validate("consumer.session.timeout.ms", "50000").is_ok());
        assert!(validate("consumer.session.timeout.ms", "44999").is_err());
        assert!(validate("consumer.session.timeout.ms", "60001").is_err());
        assert!(validate("share.auto.offset.reset", "earliest").is_ok());
        assert!(validate("share.auto.offset.reset", "middle").is_err());
        assert!(validate("no.such.group.config", "1").is_err());
    }
}
