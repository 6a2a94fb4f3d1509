//! Dynamic configs: broker configs changed at runtime (per broker id, or cluster-wide under the
//! name `""`) and group configs, stored in `dynamic-configs.json` on a single node and in the
//! controller's image in a cluster. Dynamic `log.*` configs are the defaults of every topic that
//! does not override them, so changing one re-applies every topic's log config.

pub mod broker_defs;
pub mod defs;
pub mod group_defs;
pub mod sources;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::topics::Topic;
use chronik_storage::config::{with_broker_defaults, LogConfig};
use chronik_storage::dynamic_config_store::{self, DynamicConfigs, DynamicResource};
use std::collections::BTreeMap;
use std::sync::PoisonError;

/// Computes a resource's new dynamic configs from its current ones (or refuses the change).
pub type ConfigChange<'a> =
    &'a dyn Fn(BTreeMap<String, String>) -> Result<BTreeMap<String, String>, BrokerError>;

/// The log config of a topic with `overrides` on broker `node_id`: the topic's overrides over
/// the node's dynamic broker defaults over Chronik's (Kafka's) defaults.
pub fn topic_log_config(
    dynamic: &DynamicConfigs,
    node_id: i32,
    overrides: &BTreeMap<String, String>,
) -> LogConfig {
    LogConfig::from_overrides(&with_broker_defaults(
        &dynamic.broker_effective(node_id),
        overrides,
    ))
}

impl Broker {
    /// Every dynamic config override (in a cluster, the controller image's).
    pub fn dynamic_configs(&self) -> DynamicConfigs {
        match &self.cluster {
            Some(node) => node.with_image(|i| i.dynamic_configs.clone()),
            None => self
                .dynamic
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// The log config of a topic with these overrides on this broker.
    pub fn log_config_for(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        topic_log_config(&self.dynamic_configs(), self.config.node_id, overrides)
    }

    /// Changes the dynamic configs of one resource: `change` computes (and validates) the new
    /// overrides from the current ones, atomically with respect to every other change; an
    /// empty result removes them. Durable, and applied to this broker's topics, before it
    /// returns. With `validate_only` nothing is changed.
    pub fn update_dynamic_configs(
        &self,
        resource: DynamicResource,
        name: &str,
        validate_only: bool,
        change: ConfigChange<'_>,
    ) -> Result<(), BrokerError> {
        if let Some(node) = &self.cluster {
            return self.update_dynamic_configs_in_cluster(
                node,
                (resource, name),
                validate_only,
                change,
            );
        }
        let _admin = self.lock_admin();
        let mut all = self.dynamic_configs();
        let configs = change(all.get(resource, name))?;
        if validate_only {
            return Ok(());
        }
        all.set(resource, name, configs);
        dynamic_config_store::store(&self.config.data_dir, &all)?;
        *self.dynamic.write().unwrap_or_else(PoisonError::into_inner) = all;
        self.apply_log_configs();
        Ok(())
    }

    /// Whether every topic here has the log config its overrides and the current broker
    /// defaults make (in a cluster: the reconciler has caught up with a change).
    pub(crate) fn log_configs_current(&self) -> bool {
        let dynamic = self.dynamic_configs();
        self.all_topics().iter().all(|t| {
            t.log_config == topic_log_config(&dynamic, self.config.node_id, &t.record.configs)
        })
    }

    /// Gives every topic the log config its overrides and the current broker defaults make
    /// (single node; the reconciler does this in a cluster).
    fn apply_log_configs(&self) {
        for t in self.all_topics() {
            let log_config = self.log_config_for(&t.record.configs);
            if log_config == t.log_config {
                continue;
            }
            for p in &t.partitions {
                p.with_log(|l| l.set_config(log_config.clone()));
            }
            self.install_topic(Topic {
                record: t.record.clone(),
                log_config,
                partitions: t.partitions.clone(),
            });
        }
    }
}
