//! OffsetFetch (key 9): one group (v0-7) or several (v8+); all partitions when topics is null.

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::error::NONE;
use chronik_group::offset_fetch::FetchedOffset;
use chronik_group::GroupCoordinator;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

const MULTI_GROUP_VERSION: i16 = 8;
const LEADER_EPOCH_VERSION: i16 = 5;

type Wanted = Option<Vec<(String, i32)>>;
/// (partition, (offset, leader epoch, metadata)).
type PartitionOffset = (i32, (i64, i32, String));

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let coordinator = broker.groups.read().await;
    if version >= MULTI_GROUP_VERSION {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let wanted: Wanted = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .flat_map(|t| {
                            t.partition_indexes
                                .iter()
                                .map(|p| (t.name.0.to_string(), *p))
                        })
                        .collect()
                });
                let topics = by_topic(fetch(&coordinator, g.group_id.0.as_str(), &wanted))
                    .into_iter()
                    .map(|(name, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(topic_name(&name))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, o)| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(o.0)
                                            .with_committed_leader_epoch(o.1)
                                            .with_metadata(Some(str_bytes(o.2)))
                                    })
                                    .collect(),
                            )
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
    let wanted: Wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(|p| (t.name.0.to_string(), *p))
            })
            .collect()
    });
    let topics = by_topic(fetch(&coordinator, req.group_id.0.as_str(), &wanted))
        .into_iter()
        .map(|(name, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&name))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, o)| {
                            let mut r = OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(o.0)
                                .with_metadata(Some(str_bytes(o.2)));
                            if version >= LEADER_EPOCH_VERSION {
                                r.committed_leader_epoch = o.1;
                            }
                            r
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default()
        .with_topics(topics)
        .with_error_code(NONE)
}

fn fetch(c: &GroupCoordinator, group: &str, wanted: &Wanted) -> Vec<FetchedOffset> {
    c.fetch_offsets(group, wanted.as_deref())
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
