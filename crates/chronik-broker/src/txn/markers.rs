//! Transaction markers: a decided transaction ends with a COMMIT or ABORT control batch in
//! every partition it wrote to (Kafka's WriteTxnMarkers). Markers for partitions this node
//! leads are written here; the others are sent to their leader over the peer transport, whose
//! broker writes them with `write_local`. A marker in a `__consumer_offsets` partition also
//! commits or drops the offsets the transaction committed for its groups.

use crate::broker::{now_ms, Broker};
use crate::error::BrokerError;
use crate::internal_topic::start_store;
use crate::topics::CONSUMER_OFFSETS_TOPIC;
use crate::txn::Verification;
use chronik_replication::transport::GroupId;
use chronik_replication::txn_markers::{
    MarkerResults, MarkerWriter, TxnMarkers, TxnVerdict, VerifyTxn,
};
use chronik_storage::control::{marker_batch, ControlType, TxnMarker};
use chronik_txn::Completion;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;

/// Writes the markers of `c` (with the coordinator's epoch) and waits until every one is
/// stored. A partition that no longer exists is skipped, as Kafka does.
pub async fn write(
    broker: &Broker,
    c: &Completion,
    coordinator_epoch: i32,
) -> Result<(), BrokerError> {
    let markers = TxnMarkers {
        producer_id: c.producer_id,
        producer_epoch: c.producer_epoch,
        commit: c.commit,
        coordinator_epoch,
        partitions: Vec::new(),
    };
    let mut local = Vec::new();
    let mut remote: BTreeMap<u64, Vec<GroupId>> = BTreeMap::new();
    for (topic, index) in &c.partitions {
        match broker.partition(topic, *index) {
            Err(BrokerError::UnknownTopicOrPartition) if deleted(broker, topic) => continue,
            Err(BrokerError::UnknownTopicOrPartition) => {
                // In the controller's metadata but not served here yet (a node starting up).
                return Err(BrokerError::NotLeaderOrFollower);
            }
            Ok(p) if p.accepts_writes() => local.push(GroupId::new(topic.clone(), *index)),
            _ => {
                let (leader, _) = broker
                    .partition_leader(topic, *index)
                    .ok_or(BrokerError::NotLeaderOrFollower)?;
                remote
                    .entry(leader)
                    .or_default()
                    .push(GroupId::new(topic.clone(), *index));
            }
        }
    }
    let mut results = write_local(
        broker,
        TxnMarkers {
            partitions: local,
            ..markers.clone()
        },
    )
    .await;
    for (leader, partitions) in remote {
        let node = broker
            .cluster
            .as_ref()
            .ok_or(BrokerError::NotLeaderOrFollower)?;
        let req = TxnMarkers {
            partitions,
            ..markers.clone()
        };
        let answered = node
            .write_txn_markers(leader, req)
            .await
            .map_err(|e| BrokerError::ControllerUnavailable(e.to_string()))?;
        results.extend(answered);
    }
    match results.into_iter().find_map(|(g, e)| e.map(|e| (g, e))) {
        None => Ok(()),
        Some((g, e)) => Err(BrokerError::InvalidRequest(format!(
            "marker for {g} not written: {e}"
        ))),
    }
}

/// Whether `topic` is gone for good (deleted), so its markers are not needed: on a single
/// node when it is unknown, in a cluster when the controller's metadata has no such topic
/// (a node that has not installed a topic yet must not skip its markers).
fn deleted(broker: &Broker, topic: &str) -> bool {
    match &broker.cluster {
        Some(node) => !node.with_image(|i| i.topics.contains_key(topic)),
        None => broker.topic(topic).is_none(),
    }
}

/// Writes `markers` to the partitions named, which this node must lead.
pub async fn write_local(broker: &Broker, markers: TxnMarkers) -> MarkerResults {
    let marker = TxnMarker {
        producer_id: markers.producer_id,
        producer_epoch: markers.producer_epoch,
        control: if markers.commit {
            ControlType::Commit
        } else {
            ControlType::Abort
        },
        coordinator_epoch: markers.coordinator_epoch,
    };
    let now = now_ms();
    let mut pending = Vec::new();
    let mut results = Vec::new();
    for g in markers.partitions {
        let started = broker
            .partition(&g.topic, g.partition)
            .and_then(|p| {
                if p.accepts_writes() {
                    Ok(p)
                } else {
                    Err(BrokerError::NotLeaderOrFollower)
                }
            })
            .and_then(|p| {
                // Closing the producer's verification guard first: a batch verified before
                // this marker and not proposed yet is refused (see `guards`).
                p.txn_guards().close(markers.producer_id, || {
                    start_store(broker, &p, marker_batch(&marker, now), now)
                })
            });
        match started {
            Ok(store) => pending.push((g, store)),
            Err(BrokerError::UnknownTopicOrPartition) if deleted(broker, &g.topic) => {
                results.push((g, None))
            }
            Err(e) => results.push((g, Some(e.to_string()))),
        }
    }
    for (g, store) in pending {
        match store.wait().await {
            Ok(()) => {
                if g.topic == CONSUMER_OFFSETS_TOPIC {
                    broker
                        .groups
                        .complete_txn_offsets(markers.producer_id, markers.commit, g.partition)
                        .await;
                }
                results.push((g, None));
            }
            Err(e) => results.push((g, Some(e.to_string()))),
        }
    }
    results
}

/// The broker's side of `WriteTxnMarkers` and `VerifyTxn` peer requests.
pub struct BrokerMarkerWriter(pub Weak<Broker>);

impl MarkerWriter for BrokerMarkerWriter {
    fn verify_txn(&self, r: &VerifyTxn) -> TxnVerdict {
        let Some(b) = self.0.upgrade() else {
            return TxnVerdict::NotCoordinator;
        };
        let producer = (r.producer_id, r.producer_epoch);
        let found = b.txns.verify(
            &b,
            &r.transactional_id,
            producer,
            &r.partition.topic,
            r.partition.partition,
        );
        match found {
            Verification::InTransaction => TxnVerdict::InTransaction,
            Verification::NotInTransaction => TxnVerdict::NotInTransaction,
            Verification::Fenced => TxnVerdict::Fenced,
            Verification::Elsewhere => TxnVerdict::NotCoordinator,
        }
    }

    fn write_markers(
        &self,
        markers: TxnMarkers,
    ) -> Pin<Box<dyn Future<Output = MarkerResults> + Send>> {
        let broker = self.0.upgrade();
        Box::pin(async move {
            match broker {
                Some(b) => write_local(&b, markers).await,
                None => markers
                    .partitions
                    .into_iter()
                    .map(|g| (g, Some("the broker is shutting down".to_string())))
                    .collect(),
            }
        })
    }
}
