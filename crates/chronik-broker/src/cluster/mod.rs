//! The broker in a cluster: topics come from the controller's metadata image instead of
//! `topics.json`; the reconciler opens this node's replicas of new partitions (with their Raft
//! groups) and closes those of deleted topics; admin changes are proposed to the controller.

use crate::broker::Broker;
use crate::dynamic_configs::ConfigChange;
use crate::error::BrokerError;
use crate::topics::Topic;
use chronik_replication::controller::assignment;
use chronik_replication::controller::{MetadataOutcome, MetadataRecord, RejectReason};
use chronik_replication::node::{NodeError, ReplicationNode};
use chronik_storage::dynamic_config_store::DynamicResource;
use chronik_storage::topic_store::TopicRecord;
use std::collections::BTreeMap;
use std::sync::Arc;

mod leadership;
mod reconcile;
mod status;

pub use reconcile::run_reconciler;

/// The file in a partition directory naming the topic id the data belongs to, so a topic
/// deleted and created again under the same name never reuses old data.
pub const TOPIC_ID_FILE: &str = "topic-id";

impl From<NodeError> for BrokerError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Storage(s) => BrokerError::Storage(s),
            other => BrokerError::ControllerUnavailable(other.to_string()),
        }
    }
}

/// Runs a metadata proposal from synchronous handler code (admin requests are rare and may
/// wait for the controller).
pub fn propose_blocking(
    node: &ReplicationNode,
    record: MetadataRecord,
) -> Result<MetadataOutcome, BrokerError> {
    let handle = tokio::runtime::Handle::current();
    Ok(tokio::task::block_in_place(|| {
        handle.block_on(node.propose(record))
    })?)
}

fn reject_error(name: &str, reason: RejectReason) -> BrokerError {
    match reason {
        RejectReason::TopicAlreadyExists => BrokerError::TopicAlreadyExists(name.to_string()),
        RejectReason::UnknownTopic => BrokerError::UnknownTopicOrPartition,
        RejectReason::InvalidPartitions => {
            BrokerError::InvalidPartitions("invalid partition assignment".into())
        }
        RejectReason::Conflict => {
            BrokerError::ControllerUnavailable(format!("{name} kept changing; try again"))
        }
    }
}

fn expect_applied(name: &str, outcome: MetadataOutcome) -> Result<(), BrokerError> {
    match outcome {
        MetadataOutcome::Applied => Ok(()),
        MetadataOutcome::Rejected(r) => Err(reject_error(name, r)),
        other => Err(BrokerError::InvalidRequest(format!(
            "unexpected controller outcome {other:?}"
        ))),
    }
}

/// The replication factor a request asks for (-1: the default), checked against the voters.
pub fn replication_factor(node: &ReplicationNode, requested: i16) -> Result<usize, BrokerError> {
    let voters = node.voters().len();
    if requested == -1 {
        return Ok(assignment::default_replication_factor(voters));
    }
    crate::topics::validate_replication_factor(
        requested,
        i16::try_from(voters).unwrap_or(i16::MAX),
    )?;
    Ok(usize::try_from(requested).unwrap_or(1))
}

impl Broker {
    /// Cluster mode: creates a topic through the controller and waits until this node serves it.
    /// Creates a topic through the controller: its replica sets are `explicit` (a client's,
    /// already checked) or spread over the voters.
    pub(crate) fn create_topic_in_cluster(
        &self,
        node: &ReplicationNode,
        record: TopicRecord,
        requested_rf: i16,
        explicit: Option<Vec<Vec<u64>>>,
    ) -> Result<Arc<Topic>, BrokerError> {
        let rf = replication_factor(node, requested_rf)?;
        let brokers: Vec<u64> = node.voters().iter().copied().collect();
        let assignments = explicit.unwrap_or_else(|| {
            assignment::assign(&record.name, &brokers, 0, record.partitions, rf)
        });
        let name = record.name.clone();
        let outcome = propose_blocking(
            node,
            MetadataRecord::CreateTopic {
                topic: record,
                assignments,
            },
        )?;
        expect_applied(&name, outcome)?;
        self.wait_reconciled(|b| b.topic(&name).is_some())?;
        self.topic(&name)
            .ok_or(BrokerError::UnknownTopicOrPartition)
    }

    pub(crate) fn delete_topic_in_cluster(
        &self,
        node: &ReplicationNode,
        name: &str,
    ) -> Result<uuid::Uuid, BrokerError> {
        let id = self
            .topic(name)
            .map(|t| t.record.topic_id)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let outcome = propose_blocking(
            node,
            MetadataRecord::DeleteTopic {
                name: name.to_string(),
            },
        )?;
        expect_applied(name, outcome)?;
        self.wait_reconciled(|b| b.topic(name).is_none())?;
        Ok(id)
    }

    pub(crate) fn create_partitions_in_cluster(
        &self,
        node: &ReplicationNode,
        name: &str,
        (current, count): (i32, i32),
        explicit: Option<Vec<Vec<u64>>>,
    ) -> Result<(), BrokerError> {
        let rf = node
            .with_image(|i| i.replicas(name, 0).map(<[u64]>::len))
            .unwrap_or(1);
        let brokers: Vec<u64> = node.voters().iter().copied().collect();
        let assignments = explicit
            .unwrap_or_else(|| assignment::assign(name, &brokers, current, count - current, rf));
        let outcome = propose_blocking(
            node,
            MetadataRecord::CreatePartitions {
                name: name.to_string(),
                assignments,
            },
        )?;
        expect_applied(name, outcome)?;
        self.wait_reconciled(|b| b.topic(name).is_some_and(|t| t.record.partitions >= count))
    }

    pub(crate) fn set_topic_configs_in_cluster(
        &self,
        node: &ReplicationNode,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), BrokerError> {
        let want = configs.clone();
        let outcome = propose_blocking(
            node,
            MetadataRecord::AlterTopicConfigs {
                name: name.to_string(),
                configs,
            },
        )?;
        expect_applied(name, outcome)?;
        self.wait_reconciled(|b| b.topic(name).is_some_and(|t| t.record.configs == want))
    }

    /// Proposes the change computed from the image's current value, on condition that the
    /// value is still that one; recomputes and proposes again when another change came first.
    /// Answers once this node's topics have the log configs the new value makes.
    pub(crate) fn update_dynamic_configs_in_cluster(
        &self,
        node: &ReplicationNode,
        (resource, name): (DynamicResource, &str),
        validate_only: bool,
        change: ConfigChange<'_>,
    ) -> Result<(), BrokerError> {
        const ATTEMPTS: usize = 5;
        for _ in 0..ATTEMPTS {
            let previous = self.dynamic_configs().get(resource, name);
            let configs = change(previous.clone())?;
            if validate_only {
                return Ok(());
            }
            let outcome = propose_blocking(
                node,
                MetadataRecord::AlterDynamicConfigs {
                    resource,
                    name: name.to_string(),
                    previous,
                    configs,
                },
            )?;
            if outcome == MetadataOutcome::Rejected(RejectReason::Conflict) {
                continue;
            }
            expect_applied(name, outcome)?;
            return self.wait_reconciled(Broker::log_configs_current);
        }
        Err(reject_error(name, RejectReason::Conflict))
    }

    /// A producer id from a block the controller handed to this node.
    pub(crate) fn allocate_producer_id_in_cluster(
        &self,
        node: &ReplicationNode,
    ) -> Result<i64, BrokerError> {
        const BLOCK: i64 = 1000;
        if let Some(id) = self.take_cluster_producer_id() {
            return Ok(id);
        }
        let outcome = propose_blocking(
            node,
            MetadataRecord::AllocateProducerIds {
                node_id: node.node_id,
                count: BLOCK,
            },
        )?;
        match outcome {
            MetadataOutcome::ProducerIds { first } => {
                self.refill_cluster_producer_ids(first + 1, first + BLOCK);
                Ok(first)
            }
            other => Err(BrokerError::InvalidRequest(format!(
                "unexpected controller outcome {other:?}"
            ))),
        }
    }

    /// Waits (blocking this worker) until the reconciler has made `done` true.
    fn wait_reconciled(&self, done: impl Fn(&Broker) -> bool) -> Result<(), BrokerError> {
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let deadline = tokio::time::Instant::now()
                    + std::time::Duration::from_millis(
                        chronik_replication::node::CONTROLLER_WRITE_TIMEOUT_MS,
                    );
                loop {
                    let changed = self.topics_changed.notified();
                    if done(self) {
                        return Ok(());
                    }
                    if tokio::time::timeout_at(deadline, changed).await.is_err() {
                        return Err(BrokerError::ControllerUnavailable(
                            "the topic change did not reach this broker in time".into(),
                        ));
                    }
                }
            })
        })
    }
}
