//! OffsetFetch (key 9): one group (v0-7) or several (v8+); all partitions when topics is null;
//! with `require_stable` (v7+), UNSTABLE_OFFSET_COMMIT where an open transaction committed one.

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::error::NONE;
use chronik_group::error::UNSTABLE_OFFSET_COMMIT;
use chronik_group::offset_fetch::FetchedOffset;
use chronik_group::GroupCoordinator;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use std::collections::BTreeMap;
use std::sync::Arc;

const MULTI_GROUP_VERSION: i16 = 8;
const LEADER_EPOCH_VERSION: i16 = 5;

/// (partition, (offset, leader epoch, metadata)).
type PartitionOffset = (i32, (i64, i32, String));

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    // Decided before the coordinator's lock is taken (may create __consumer_offsets).
    let not_coordinator: Vec<Option<i16>> = if version >= MULTI_GROUP_VERSION {
        req.groups
            .iter()
            .map(|g| {
                broker
                    .groups
                    .coordinator_error(broker, g.group_id.0.as_str())
            })
            .collect()
    } else {
        vec![broker
            .groups
            .coordinator_error(broker, req.group_id.0.as_str())]
    };
    let coordinator = broker.groups.read().await;
    if version >= MULTI_GROUP_VERSION {
        let groups = req
            .groups
            .iter()
            .zip(not_coordinator)
            .map(|(g, not_coordinator)| {
                if let Some(c) = not_coordinator {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(GroupId(g.group_id.0.clone()))
                        .with_error_code(c);
                }
                let wanted = g
                    .topics
                    .as_ref()
                    .map(|ts| partitions(ts.iter().map(|t| (&t.name, &t.partition_indexes))));
                let topics = committed(&coordinator, g.group_id.0.as_str(), wanted)
                    .into_iter()
                    .map(|(name, parts)| {
                        let parts = parts.into_iter().map(|(p, (offset, epoch, metadata))| {
                            let unstable = req.require_stable
                                && coordinator.has_pending_txn_offset(
                                    g.group_id.0.as_str(),
                                    &name,
                                    p,
                                );
                            if unstable {
                                return OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(-1)
                                    .with_error_code(UNSTABLE_OFFSET_COMMIT);
                            }
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(str_bytes(metadata)))
                        });
                        OffsetFetchResponseTopics::default()
                            .with_name(topic_name(&name))
                            .with_partitions(parts.collect())
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(g.group_id.0.clone()))
                    .with_topics(topics)
                    .with_error_code(NONE)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    if let Some(c) = not_coordinator.first().copied().flatten() {
        return OffsetFetchResponse::default().with_error_code(c);
    }
    let wanted = req
        .topics
        .as_ref()
        .map(|ts| partitions(ts.iter().map(|t| (&t.name, &t.partition_indexes))));
    let topics = committed(&coordinator, req.group_id.0.as_str(), wanted)
        .into_iter()
        .map(|(name, parts)| {
            let parts = parts.into_iter().map(|(p, (offset, epoch, metadata))| {
                let unstable = req.require_stable
                    && coordinator.has_pending_txn_offset(req.group_id.0.as_str(), &name, p);
                if unstable {
                    return OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(-1)
                        .with_error_code(UNSTABLE_OFFSET_COMMIT);
                }
                let mut r = OffsetFetchResponsePartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(offset)
                    .with_metadata(Some(str_bytes(metadata)));
                if version >= LEADER_EPOCH_VERSION {
                    r.committed_leader_epoch = epoch;
                }
                r
            });
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&name))
                .with_partitions(parts.collect())
        })
        .collect();
    OffsetFetchResponse::default()
        .with_topics(topics)
        .with_error_code(NONE)
}

/// The (topic, partition) pairs a request names.
fn partitions<'a>(
    topics: impl Iterator<Item = (&'a TopicName, &'a Vec<i32>)>,
) -> Vec<(String, i32)> {
    topics
        .flat_map(|(name, ps)| ps.iter().map(move |p| (name.0.to_string(), *p)))
        .collect()
}

/// Committed offsets of `group` for `wanted` (every partition when `None`), by topic.
fn committed(
    c: &GroupCoordinator,
    group: &str,
    wanted: Option<Vec<(String, i32)>>,
) -> Vec<(String, Vec<PartitionOffset>)> {
    by_topic(c.fetch_offsets(group, wanted.as_deref()))
}

/// (offset, leader epoch, metadata) per partition, grouped by topic in request order.
fn by_topic(offsets: Vec<FetchedOffset>) -> Vec<(String, Vec<PartitionOffset>)> {
    let mut order: Vec<String> = Vec::new();
    let mut map: BTreeMap<String, Vec<PartitionOffset>> = BTreeMap::new();
    for ((topic, partition), o) in offsets {
        if !map.contains_key(&topic) {
            order.push(topic.clone());
        }
        let v = o.map_or((-1, -1, String::new()), |o| {
            (o.offset, o.leader_epoch, o.metadata)
        });
        map.entry(topic).or_default().push((partition, v));
    }
    order
        .into_iter()
        .map(|t| {
            let v = map.remove(&t).unwrap_or_default();
            (t, v)
        })
        .collect()
}
