//! Where a config's value comes from, in Kafka's order of precedence: each function returns the
//! config's synonyms as DescribeConfigs lists them (name, value, source), the effective one
//! first.

use super::broker_defs;
use super::defs::DynamicConfigDef;
use chronik_storage::config::{broker_synonym, ConfigDef};
use chronik_storage::dynamic_config_store::{DynamicConfigs, DynamicResource, CLUSTER_DEFAULT};
use std::collections::BTreeMap;

/// Kafka's `ConfigSource` codes.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;
pub const SOURCE_GROUP: i8 = 8;

/// One synonym: the config name it is set under, its value, its source.
pub type Synonym = (String, Option<String>, i8);

/// A topic config: the topic's override, the dynamic broker config of its synonym (this
/// broker's, then the cluster-wide default), then Kafka's default.
pub fn topic_config(
    dynamic: &DynamicConfigs,
    node_id: i32,
    overrides: &BTreeMap<String, String>,
    def: &ConfigDef,
) -> Vec<Synonym> {
    let mut out = Vec::new();
    if let Some(v) = overrides.get(def.name) {
        out.push((def.name.to_string(), Some(v.clone()), SOURCE_TOPIC));
    }
    if let Some(broker_name) = broker_synonym(def.name) {
        out.extend(dynamic_broker(dynamic, node_id, broker_name));
    }
    out.push((
        def.name.to_string(),
        Some(def.default.to_string()),
        SOURCE_DEFAULT,
    ));
    out
}

/// A broker config of broker `node_id`: its dynamic value, then the value the server was
/// started with (`static_value`), then Kafka's default.
pub fn broker_config(
    dynamic: &DynamicConfigs,
    node_id: i32,
    name: &str,
    static_value: Option<String>,
) -> Vec<Synonym> {
    let mut out = dynamic_broker(dynamic, node_id, name);
    match static_value {
        Some(v) => out.push((name.to_string(), Some(v), SOURCE_STATIC_BROKER)),
        None => out.push((
            name.to_string(),
            broker_defs::static_default(name),
            SOURCE_DEFAULT,
        )),
    }
    out
}

/// A group config: the group's own value, or else Kafka's default (one synonym, as Kafka
/// lists it).
pub fn group_config(dynamic: &DynamicConfigs, group: &str, def: &DynamicConfigDef) -> Vec<Synonym> {
    match dynamic.get(DynamicResource::Group, group).get(def.name) {
        Some(v) => vec![(def.name.to_string(), Some(v.clone()), SOURCE_GROUP)],
        None => vec![(
            def.name.to_string(),
            def.default.map(str::to_string),
            SOURCE_DEFAULT,
        )],
    }
}

fn dynamic_broker(dynamic: &DynamicConfigs, node_id: i32, name: &str) -> Vec<Synonym> {
    let mut out = Vec::new();
    if let Some(v) = dynamic
        .get(DynamicResource::Broker, &node_id.to_string())
        .get(name)
    {
        out.push((name.to_string(), Some(v.clone()), SOURCE_DYNAMIC_BROKER));
    }
    if let Some(v) = dynamic
        .get(DynamicResource::Broker, CLUSTER_DEFAULT)
        .get(name)
    {
        out.push((
            name.to_string(),
            Some(v.clone()),
            SOURCE_DYNAMIC_DEFAULT_BROKER,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronik_storage::config::config_def;

    fn dynamic() -> DynamicConfigs {
        let mut d = DynamicConfigs::default();
        d.set(
            DynamicResource::Broker,
            CLUSTER_DEFAULT,
            BTreeMap::from([("log.retention.ms".to_string(), "1000".to_string())]),
        );
        d.set(
            DynamicResource::Broker,
            "2",
            BTreeMap::from([("log.retention.ms".to_string(), "2000".to_string())]),
        );
        d
    }

    #[test]
    fn topic_override_then_broker_then_cluster_then_default() {
        let def = config_def("retention.ms").unwrap();
        let on1 = topic_config(&dynamic(), 1, &BTreeMap::new(), def);
        assert_eq!(on1[0], ("log.retention.ms".into(), Some("1000".into()), 3));
        let on2 = topic_config(&dynamic(), 2, &BTreeMap::new(), def);
        assert_eq!(on2[0], ("log.retention.ms".into(), Some("2000".into()), 2));
        assert_eq!(on2.len(), 3);
        let o = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        let over = topic_config(&dynamic(), 2, &o, def);
        assert_eq!(over[0], ("retention.ms".into(), Some("5".into()), 1));
        let none = topic_config(&DynamicConfigs::default(), 2, &BTreeMap::new(), def);
        assert_eq!(
            none,
            vec![("retention.ms".into(), Some(def.default.into()), 5)]
        );
    }

    #[test]
    fn broker_config_falls_back_to_static_then_default() {
        let d = dynamic();
        assert_eq!(
            broker_config(&d, 1, "log.retention.ms", Some("604800000".into()))[0].2,
            SOURCE_DYNAMIC_DEFAULT_BROKER
        );
        let bg = broker_config(&d, 1, "background.threads", None);
        assert_eq!(
            bg,
            vec![("background.threads".into(), Some("10".into()), 5)]
        );
    }
}
