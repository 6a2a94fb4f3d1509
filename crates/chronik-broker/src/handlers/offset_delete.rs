//! OffsetDelete (key 47): deletes committed offsets of partitions the group no longer consumes.

use crate::broker::Broker;
use chronik_group::{error, Output};
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::protocol::{Decodable, Message};
use std::collections::BTreeSet;
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = req.group_id.0.to_string();
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    if let Some(c) = broker.groups.coordinator_error(broker, &group) {
        return OffsetDeleteResponse::default().with_error_code(c);
    }
    let ((group_error, codes), stored) = broker
        .groups
        .run(broker, |c, _| {
            let subscribed = subscribed_topics(c, &group);
            let (g, codes, records) = c.delete_offsets(&group, &partitions, &subscribed);
            (
                (g, codes),
                Output {
                    records,
                    replies: Vec::new(),
                },
            )
        })
        .await;
    if group_error != error::NONE {
        return OffsetDeleteResponse::default().with_error_code(group_error);
    }
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let code = codes.next().unwrap_or(error::NONE);
                            let code = if stored || code != error::NONE {
                                code
                            } else {
                                error::COORDINATOR_NOT_AVAILABLE
                            };
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}

/// Topics the group's consumer members subscribe to (from their ConsumerProtocolSubscription).
fn subscribed_topics(c: &chronik_group::GroupCoordinator, group: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(g) = c.group(group) else { return out };
    if g.protocol_type.as_deref() != Some("consumer") {
        return out;
    }
    let protocol = g.protocol_name.clone().unwrap_or_default();
    for m in g.members.values() {
        let mut metadata = m.metadata_for(&protocol);
        let Some(version) = metadata.get(..2).and_then(|b| <[u8; 2]>::try_from(b).ok()) else {
            continue;
        };
        // Newer subscription versions only add fields at the end: read what this codec knows.
        let version = i16::from_be_bytes(version).min(ConsumerProtocolSubscription::VERSIONS.max);
        bytes::Buf::advance(&mut metadata, 2);
        if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut metadata, version) {
            out.extend(sub.topics.iter().map(|t| t.to_string()));
        }
    }
    out
}
