//! DeleteGroups and OffsetDelete.

use crate::coordinator::GroupCoordinator;
use crate::group::GroupState;
use crate::records::GroupRecord;
use crate::types::error;
use std::collections::BTreeSet;

impl GroupCoordinator {
    /// Deletes empty groups: tombstones for their offsets and metadata.
    pub fn delete_groups(&self, group_ids: &[String]) -> (Vec<i16>, Vec<GroupRecord>) {
        let mut codes = Vec::with_capacity(group_ids.len());
        let mut records = Vec::new();
        for id in group_ids {
            let Some(g) = self.groups.get(id) else {
                codes.push(error::GROUP_ID_NOT_FOUND);
                continue;
            };
            if !g.is(GroupState::Empty) {
                codes.push(error::NON_EMPTY_GROUP);
                continue;
            }
            for (topic, partition) in g.offsets.keys() {
                records.push(GroupRecord::Offset {
                    group_id: id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                });
            }
            records.push(GroupRecord::Metadata {
                group_id: id.clone(),
                value: None,
            });
            codes.push(error::NONE);
        }
        (codes, records)
    }

    /// Deletes committed offsets of partitions the group does not consume (`subscribed` are the
    /// topics its members subscribe to). Returns the group error, one code per partition, records.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
        subscribed: &BTreeSet<String>,
    ) -> (i16, Vec<i16>, Vec<GroupRecord>) {
        let Some(g) = self.groups.get(group_id) else {
            return (error::GROUP_ID_NOT_FOUND, Vec::new(), Vec::new());
        };
        let mut codes = Vec::with_capacity(partitions.len());
        let mut records = Vec::new();
        for (topic, partition) in partitions {
            if !g.is(GroupState::Empty) && subscribed.contains(topic) {
                codes.push(error::GROUP_SUBSCRIBED_TO_TOPIC);
                continue;
            }
            if g.offsets.contains_key(&(topic.clone(), *partition)) {
                records.push(GroupRecord::Offset {
                    group_id: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                });
            }
            codes.push(error::NONE);
        }
        (error::NONE, codes, records)
    }
}
