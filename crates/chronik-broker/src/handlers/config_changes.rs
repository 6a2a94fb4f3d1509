//! What AlterConfigs and IncrementalAlterConfigs share: the resource types, the incremental
//! operations (SET, DELETE, APPEND, SUBTRACT) and changes of dynamic broker and group configs.

use crate::broker::Broker;
use crate::dynamic_configs::{broker_defs, group_defs};
use crate::error::BrokerError;
use chronik_storage::config::InvalidConfig;
use chronik_storage::dynamic_config_store::{DynamicResource, CLUSTER_DEFAULT};
use std::collections::BTreeMap;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_GROUP: i8 = 32;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// One incremental change: config name, operation, value.
pub struct ConfigOp<'a> {
    pub name: &'a str,
    pub operation: i8,
    pub value: Option<&'a str>,
}

/// Applies `ops` to `configs` (a resource's overrides). APPEND and SUBTRACT start from the
/// current value, or the default when there is no override, and apply to list configs only;
/// only DELETE may have a null value.
pub fn apply_ops(
    configs: &mut BTreeMap<String, String>,
    ops: &[ConfigOp<'_>],
    is_list: impl Fn(&str) -> bool,
    default: impl Fn(&str) -> Option<String>,
) -> Result<(), BrokerError> {
    if let Some(op) = ops
        .iter()
        .find(|o| o.value.is_none() && o.operation != OP_DELETE)
    {
        return Err(BrokerError::InvalidRequest(format!(
            "Null value not supported for : {}",
            op.name
        )));
    }
    for op in ops {
        let key = op.name.to_string();
        let value = op.value.unwrap_or_default();
        let list_only = || {
            if is_list(&key) {
                Ok(())
            } else {
                Err(BrokerError::InvalidConfig(InvalidConfig {
                    name: key.clone(),
                    value: value.to_string(),
                    reason: "Config value append/subtract is not allowed for this config".into(),
                }))
            }
        };
        let current: Vec<String> = configs
            .get(&key)
            .cloned()
            .or_else(|| default(&key))
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        match op.operation {
            OP_SET => {
                configs.insert(key, value.to_string());
            }
            OP_DELETE => {
                configs.remove(&key);
            }
            OP_APPEND => {
                list_only()?;
                let mut items = current;
                for v in value.split(',').filter(|s| !s.is_empty()) {
                    if !items.iter().any(|i| i == v) {
                        items.push(v.to_string());
                    }
                }
                configs.insert(key, items.join(","));
            }
            OP_SUBTRACT => {
                list_only()?;
                let remove: Vec<&str> = value.split(',').collect();
                let items: Vec<String> = current
                    .into_iter()
                    .filter(|s| !remove.contains(&s.as_str()))
                    .collect();
                configs.insert(key, items.join(","));
            }
            other => {
                return Err(BrokerError::InvalidRequest(format!(
                    "Unknown config operation {other}"
                )))
            }
        }
    }
    Ok(())
}

/// The dynamic resource a BROKER or GROUP request names, with Kafka's checks of the name: a
/// broker resource is this broker's id (clients send a broker's configs to that broker) or `""`
/// (every broker), a group resource a non-empty group id.
pub fn dynamic_resource(
    resource_type: i8,
    name: &str,
    node_id: i32,
) -> Result<DynamicResource, BrokerError> {
    match resource_type {
        RESOURCE_BROKER if name == CLUSTER_DEFAULT || name == node_id.to_string() => {
            Ok(DynamicResource::Broker)
        }
        RESOURCE_BROKER => Err(BrokerError::InvalidRequest(format!(
            "Unexpected broker id, expected {node_id} or empty string, but received {name}"
        ))),
        RESOURCE_GROUP if !name.is_empty() => Ok(DynamicResource::Group),
        RESOURCE_GROUP => Err(BrokerError::InvalidRequest(
            "Group name must not be empty".into(),
        )),
        other => Err(BrokerError::InvalidRequest(format!(
            "Unsupported resource type {other}"
        ))),
    }
}

/// Kafka refuses a bad broker config with INVALID_REQUEST ("Invalid config value for
/// resource ...") and a bad group config with INVALID_CONFIG.
fn validate(
    broker: &Broker,
    resource: DynamicResource,
    name: &str,
    configs: &BTreeMap<String, String>,
) -> Result<(), BrokerError> {
    let statics = broker.config.describe();
    let is_static = |k: &str| statics.iter().any(|(s, _)| *s == k);
    for (k, v) in configs {
        match resource {
            DynamicResource::Broker => broker_defs::validate(k, v, is_static).map_err(|e| {
                BrokerError::InvalidRequest(format!(
                    "Invalid config value for resource ConfigResource(type=BROKER, name='{name}'): {e}"
                ))
            })?,
            DynamicResource::Group => group_defs::validate(k, v)?,
        }
    }
    Ok(())
}

/// For each resource of a request, whether it appears more than once (Kafka refuses each such
/// resource: "Each resource must appear at most once.").
pub fn duplicates(resources: &[(i8, &str)]) -> Vec<bool> {
    resources
        .iter()
        .map(|r| resources.iter().filter(|o| *o == r).count() > 1)
        .collect()
}

/// The error of a resource named twice in one request.
pub fn duplicate_resource() -> BrokerError {
    BrokerError::InvalidRequest("Each resource must appear at most once.".into())
}

/// INVALID_REQUEST when a config name appears twice in one resource.
pub fn no_duplicate_keys<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), BrokerError> {
    let mut seen = std::collections::BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(BrokerError::InvalidRequest(format!(
                "Error due to duplicate config keys: {n}"
            )));
        }
    }
    Ok(())
}

/// AlterConfigs: the resource's dynamic configs become exactly `configs`.
pub fn replace_dynamic(
    broker: &Broker,
    resource: DynamicResource,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), BrokerError> {
    validate(broker, resource, name, &configs)?;
    broker.update_dynamic_configs(resource, name, validate_only, &|_| Ok(configs.clone()))
}

/// IncrementalAlterConfigs on a broker or group resource.
pub fn alter_dynamic(
    broker: &Broker,
    resource: DynamicResource,
    name: &str,
    ops: &[ConfigOp<'_>],
    validate_only: bool,
) -> Result<(), BrokerError> {
    broker.update_dynamic_configs(resource, name, validate_only, &|mut configs| {
        match resource {
            DynamicResource::Broker => apply_ops(
                &mut configs,
                ops,
                broker_defs::is_list,
                broker_defs::static_default,
            )?,
            DynamicResource::Group => apply_ops(
                &mut configs,
                ops,
                |_| false,
                |k| group_defs::group_config(k).and_then(|d| d.default.map(str::to_string)),
            )?,
        }
        validate(broker, resource, name, &configs)?;
        Ok(configs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op<'a>(name: &'a str, operation: i8, value: &'a str) -> ConfigOp<'a> {
        ConfigOp {
            name,
            operation,
            value: Some(value),
        }
    }

    #[test]
    fn append_starts_from_the_default_and_subtract_removes() {
        let mut c = BTreeMap::new();
        let is_list = |k: &str| k == "log.cleanup.policy";
        let default = |k: &str| (k == "log.cleanup.policy").then(|| "delete".to_string());
        apply_ops(
            &mut c,
            &[op("log.cleanup.policy", OP_APPEND, "compact")],
            is_list,
            default,
        )
        .unwrap();
        assert_eq!(c["log.cleanup.policy"], "delete,compact");
        apply_ops(
            &mut c,
            &[op("log.cleanup.policy", OP_SUBTRACT, "compact")],
            is_list,
            default,
        )
        .unwrap();
        assert_eq!(c["log.cleanup.policy"], "delete");
        apply_ops(
            &mut c,
            &[op("background.threads", OP_SET, "9")],
            is_list,
            default,
        )
        .unwrap();
        apply_ops(
            &mut c,
            &[op("background.threads", OP_DELETE, "")],
            is_list,
            default,
        )
        .unwrap();
        assert!(!c.contains_key("background.threads"));
        assert!(apply_ops(
            &mut c,
            &[op("background.threads", OP_APPEND, "1")],
            is_list,
            default
        )
        .is_err());
    }

    #[test]
    fn duplicates_are_found() {
        assert_eq!(
            duplicates(&[(2, "a"), (4, ""), (2, "a"), (2, "b")]),
            vec![true, false, true, false]
        );
        assert!(no_duplicate_keys(["a", "b"].into_iter()).is_ok());
        assert!(no_duplicate_keys(["a", "b", "a"].into_iter()).is_err());
    }

    #[test]
    fn resource_names_are_checked() {
        let broker = |n| dynamic_resource(RESOURCE_BROKER, n, 3);
        assert_eq!(broker("").unwrap(), DynamicResource::Broker);
        assert_eq!(broker("3").unwrap(), DynamicResource::Broker);
        assert!(broker("2").is_err());
        assert!(broker("three").is_err());
        let group = |n| dynamic_resource(RESOURCE_GROUP, n, 3);
        assert_eq!(group("g").unwrap(), DynamicResource::Group);
        assert!(group("").is_err());
        assert!(dynamic_resource(7, "x", 3).is_err());
    }
}
