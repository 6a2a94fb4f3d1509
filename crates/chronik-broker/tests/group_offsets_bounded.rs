#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `__consumer_offsets` stays bounded: repeated commits are compacted into snapshots, and a
//! reopened broker rebuilds the same committed offsets from what is left.

use chronik_broker::topics::CONSUMER_OFFSETS_TOPIC;
use chronik_broker::{Broker, BrokerConfig};
use chronik_group::records::partition_for;
use chronik_group::{OffsetCommitEntry, OffsetCommitRequest, Output};
use std::sync::Arc;

const PARTITIONS_PER_COMMIT: i32 = 100;
const COMMITS: i64 = 400;

fn open(dir: &std::path::Path) -> Arc<Broker> {
    Broker::open(BrokerConfig::new(
        1,
        dir.to_path_buf(),
        "127.0.0.1".into(),
        9092,
    ))
    .unwrap()
}

#[tokio::test]
async fn repeated_commits_are_compacted_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker
        .create_topic("t", PARTITIONS_PER_COMMIT, 1, Default::default())
        .unwrap();
    for round in 0..COMMITS {
        let req = OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets: (0..PARTITIONS_PER_COMMIT)
                .map(|p| OffsetCommitEntry {
                    topic: "t".into(),
                    partition: p,
                    offset: round * 10 + i64::from(p),
                    leader_epoch: -1,
                    metadata: format!("round {round}"),
                })
                .collect(),
        };
        let (codes, stored) = broker
            .groups
            .run(&broker, |c, now| {
                let (codes, records) = c.commit_offsets(&req, now);
                (
                    codes,
                    Output {
                        records,
                        replies: Vec::new(),
                    },
                )
            })
            .await;
        assert!(stored && codes.iter().all(|c| *c == 0));
    }
    let written = COMMITS * i64::from(PARTITIONS_PER_COMMIT);
    let p = broker
        .partition(CONSUMER_OFFSETS_TOPIC, partition_for("g", 50))
        .unwrap();
    let (log_start, _, log_end) = Broker::offsets(&p);
    assert!(
        log_end > written,
        "every commit and the snapshots are in the log"
    );
    let retained = log_end - log_start;
    assert!(log_start > 0, "no compaction happened");
    assert!(
        retained
            <= 2 * i64::from(PARTITIONS_PER_COMMIT) + 10_000 + i64::from(PARTITIONS_PER_COMMIT),
        "retained {retained} records"
    );
    broker.flush_all().unwrap();
    drop(p);
    drop(broker);

    let broker = open(dir.path());
    let last = COMMITS - 1;
    let c = broker.groups.read().await;
    for p in 0..PARTITIONS_PER_COMMIT {
        let o = c.committed("g", "t", p).expect("offset survives");
        assert_eq!(o.offset, last * 10 + i64::from(p));
        assert_eq!(o.metadata, format!("round {last}"));
    }
}
