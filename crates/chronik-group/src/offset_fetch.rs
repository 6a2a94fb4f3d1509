//! OffsetFetch: committed offsets of a group, for some partitions or all.

use crate::coordinator::GroupCoordinator;
use crate::types::CommittedOffset;

/// One partition in an OffsetFetch answer; `None` when nothing is committed.
pub type FetchedOffset = ((String, i32), Option<CommittedOffset>);

impl GroupCoordinator {
    /// Offsets for `partitions`, or every committed offset when `partitions` is `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<FetchedOffset> {
        let group = self.groups.get(group_id);
        match partitions {
            Some(list) => list
                .iter()
                .map(|k| (k.clone(), group.and_then(|g| g.offsets.get(k)).cloned()))
                .collect(),
            None => group
                .map(|g| {
                    g.offsets
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}
