//! The broker configs that can be changed at runtime (Kafka's dynamic broker configs), per
//! broker or cluster-wide. The `log.*` ones (and the other synonyms of topic configs) are the
//! defaults of every topic that does not override them and take effect at once; the others are
//! validated, stored and described as Kafka does, for settings Chronik has no counterpart of
//! (thread pools, SASL, connection quotas).

use super::defs::{DynamicConfigDef, ValueKind};
use chronik_storage::config::{config_def, topic_config_for, validate_entry, InvalidConfig};

const INT_MAX: i64 = i32::MAX as i64;

/// Dynamic broker configs that are not synonyms of topic configs.
pub const BROKER_ONLY_CONFIGS: &[DynamicConfigDef] = &[
    int("background.threads", "10", 1),
    int("num.io.threads", "8", 1),
    int("num.network.threads", "3", 1),
    int("num.replica.fetchers", "1", 1),
    int("num.recovery.threads.per.data.dir", "2", 1),
    int("log.cleaner.threads", "1", 0),
    DynamicConfigDef {
        name: "log.cleaner.io.max.bytes.per.second",
        default: Some("1.7976931348623157E308"),
        kind: ValueKind::Double,
    },
    long("log.cleaner.dedupe.buffer.size", "134217728", 0),
    int("log.cleaner.io.buffer.size", "524288", 0),
    DynamicConfigDef {
        name: "log.cleaner.io.buffer.load.factor",
        default: Some("0.9"),
        kind: ValueKind::Double,
    },
    long("log.cleaner.backoff.ms", "15000", 0),
    int("max.connections", "2147483647", 0),
    int("max.connections.per.ip", "2147483647", 0),
    DynamicConfigDef {
        name: "max.connections.per.ip.overrides",
        default: Some(""),
        kind: ValueKind::Str,
    },
    int("max.connection.creation.rate", "2147483647", 0),
    long(
        "leader.replication.throttled.rate",
        "9223372036854775807",
        0,
    ),
    long(
        "follower.replication.throttled.rate",
        "9223372036854775807",
        0,
    ),
    DynamicConfigDef {
        name: "metric.reporters",
        default: Some(""),
        kind: ValueKind::List,
    },
    DynamicConfigDef {
        name: "sasl.enabled.mechanisms",
        default: Some("GSSAPI"),
        kind: ValueKind::List,
    },
    DynamicConfigDef {
        name: "sasl.kerberos.service.name",
        default: None,
        kind: ValueKind::Str,
    },
    DynamicConfigDef {
        name: "sasl.kerberos.kinit.cmd",
        default: Some("/usr/bin/kinit"),
        kind: ValueKind::Str,
    },
    DynamicConfigDef {
        name: "sasl.kerberos.ticket.renew.window.factor",
        default: Some("0.8"),
        kind: ValueKind::Double,
    },
    DynamicConfigDef {
        name: "sasl.kerberos.ticket.renew.jitter",
        default: Some("0.05"),
        kind: ValueKind::Double,
    },
    long("sasl.kerberos.min.time.before.relogin", "60000", 0),
    DynamicConfigDef {
        name: "sasl.kerberos.principal.to.local.rules",
        default: Some("DEFAULT"),
        kind: ValueKind::List,
    },
];

const fn int(name: &'static str, default: &'static str, min: i64) -> DynamicConfigDef {
    DynamicConfigDef {
        name,
        default: Some(default),
        kind: ValueKind::Int { min, max: INT_MAX },
    }
}

const fn long(name: &'static str, default: &'static str, min: i64) -> DynamicConfigDef {
    DynamicConfigDef {
        name,
        default: Some(default),
        kind: ValueKind::Long { min },
    }
}

/// What Chronik knows of one dynamic broker config.
pub enum BrokerConfigKind {
    /// The default of a topic config (its name).
    TopicDefault(&'static str),
    BrokerOnly(&'static DynamicConfigDef),
}

/// Whether `name` can be set dynamically, and how.
pub fn broker_config(name: &str) -> Option<BrokerConfigKind> {
    if let Some(topic) = topic_config_for(name) {
        return Some(BrokerConfigKind::TopicDefault(topic));
    }
    BROKER_ONLY_CONFIGS
        .iter()
        .find(|d| d.name == name)
        .map(BrokerConfigKind::BrokerOnly)
}

/// Checks one `name=value` of a broker resource. As in Kafka, a name that is neither a dynamic
/// config nor a static one (`is_static`: a setting the server only takes at start-up) is a
/// custom config: stored and described, used by nothing in Chronik.
pub fn validate(
    name: &str,
    value: &str,
    is_static: impl Fn(&str) -> bool,
) -> Result<(), InvalidConfig> {
    match broker_config(name) {
        Some(BrokerConfigKind::TopicDefault(topic)) => {
            validate_entry(topic, value).map_err(|e| InvalidConfig {
                name: name.to_string(),
                ..e
            })
        }
        Some(BrokerConfigKind::BrokerOnly(def)) => def.validate(value),
        None if is_static(name) => Err(InvalidConfig {
            name: name.to_string(),
            value: value.to_string(),
            reason: format!("Cannot update these configs dynamically: Set({name})"),
        }),
        None => Ok(()),
    }
}

/// The value a broker config has when nothing overrides it.
pub fn static_default(name: &str) -> Option<String> {
    match broker_config(name)? {
        BrokerConfigKind::TopicDefault(topic) => config_def(topic).map(|d| d.default.to_string()),
        BrokerConfigKind::BrokerOnly(def) => def.default.map(str::to_string),
    }
}

/// Whether the config's value is a list (APPEND and SUBTRACT apply).
pub fn is_list(name: &str) -> bool {
    match broker_config(name) {
        Some(BrokerConfigKind::TopicDefault(topic)) => {
            config_def(topic).is_some_and(|d| d.is_list())
        }
        Some(BrokerConfigKind::BrokerOnly(def)) => def.is_list(),
        None => false,
    }
}

/// Kafka's config type code of the config (UNKNOWN, 0, for a custom one).
pub fn type_code(name: &str) -> i8 {
    match broker_config(name) {
        Some(BrokerConfigKind::TopicDefault(topic)) => {
            config_def(topic).map_or(0, |d| d.type_code())
        }
        Some(BrokerConfigKind::BrokerOnly(def)) => def.type_code(),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, value: &str) -> Result<(), InvalidConfig> {
        validate(name, value, |n| n == "log.dirs" || n == "node.id")
    }

    #[test]
    fn log_configs_validate_as_their_topic_configs() {
        assert!(check("log.retention.ms", "3600000").is_ok());
        assert!(check("log.cleanup.policy", "compact,delete").is_ok());
        let e = check("log.cleanup.policy", "forever").unwrap_err();
        assert_eq!(e.name, "log.cleanup.policy");
        assert!(check("log.segment.bytes", "10").is_err());
    }

    #[test]
    fn broker_only_configs_validate_their_type() {
        assert!(check("background.threads", "9").is_ok());
        assert!(check("background.threads", "0").is_err());
        assert!(check("sasl.kerberos.min.time.before.relogin", "58000").is_ok());
        assert!(check("sasl.kerberos.ticket.renew.jitter", "x").is_err());
    }

    #[test]
    fn static_configs_are_refused_and_unknown_names_are_custom() {
        assert!(check("log.dirs", "/tmp").is_err());
        assert!(check("node.id", "7").is_err());
        assert!(check("no.such.config", "1").is_ok());
        assert_eq!(type_code("no.such.config"), 0);
    }

    #[test]
    fn defaults_and_list_types() {
        assert_eq!(
            static_default("log.cleanup.policy").as_deref(),
            Some("delete")
        );
        assert_eq!(static_default("background.threads").as_deref(), Some("10"));
        assert!(is_list("log.cleanup.policy"));
        assert!(!is_list("background.threads"));
    }
}
