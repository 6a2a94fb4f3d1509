//! Idempotent producers on a replicated partition: a retried batch is not appended again and
//! answers its original offsets, a sequence gap and a zombie epoch are refused — decided alike
//! on every replica, so a new leader de-duplicates a retry of a batch the old leader wrote.

mod common;

use bytes::Bytes;
use chronik_replication::types::{NodeId, NotAppended, Raft};
use chronik_replication::{Applied, RecordBatch};
use chronik_storage::batch_builder::{producer_batch, Producer};
use common::{applied, leader_of, start_replica, stored, Replica, Router, TestResult, WAIT};
use std::collections::{BTreeMap, BTreeSet};

fn batch(epoch: i16, seq: i32, count: i32) -> RecordBatch {
    let producer = Producer {
        id: 4242,
        epoch,
        base_sequence: seq,
    };
    RecordBatch(Bytes::from(producer_batch(
        producer,
        count,
        1_700_000_000_000,
        b"v",
    )))
}

async fn send(
    raft: &Raft,
    b: RecordBatch,
) -> Result<(Applied, u64), Box<dyn std::error::Error + Send + Sync>> {
    let resp = raft.client_write(b).await?;
    Ok((resp.data, resp.log_id.index))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_answered_with_their_first_offsets_on_any_leader() -> TestResult {
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let router = Router::default();
    let mut replicas: BTreeMap<NodeId, Replica> = BTreeMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = i as NodeId + 1;
        replicas.insert(id, start_replica(id, dir.path(), &router).await?);
    }
    let members: BTreeSet<NodeId> = replicas.keys().copied().collect();
    replicas[&1].raft.initialize(members).await?;
    let rafts: Vec<&Raft> = replicas.values().map(|r| &r.raft).collect();
    let leader = leader_of(&rafts).await?;
    let l = &replicas[&leader].raft;

    let (first, _) = send(l, batch(0, 0, 3)).await?;
    assert_eq!(
        first,
        Applied::Batch {
            base_offset: 0,
            last_offset: 2
        }
    );
    let (second, _) = send(l, batch(0, 3, 2)).await?;
    assert_eq!(
        second,
        Applied::Batch {
            base_offset: 3,
            last_offset: 4
        }
    );
    // A retry of the first batch: its first offsets, nothing appended.
    let (retry, _) = send(l, batch(0, 0, 3)).await?;
    assert_eq!(
        retry,
        Applied::NotAppended(NotAppended::Duplicate {
            base_offset: 0,
            last_offset: 2
        })
    );
    // A gap in the sequence and an older epoch are refused.
    let (gap, _) = send(l, batch(0, 9, 1)).await?;
    assert_eq!(gap, Applied::NotAppended(NotAppended::OutOfOrderSequence));
    let (next_epoch, _) = send(l, batch(1, 0, 1)).await?;
    assert_eq!(
        next_epoch,
        Applied::Batch {
            base_offset: 5,
            last_offset: 5
        }
    );
    let (zombie, last_index) = send(l, batch(0, 5, 1)).await?;
    assert_eq!(
        zombie,
        Applied::NotAppended(NotAppended::InvalidProducerEpoch)
    );

    // Every replica decided alike: the same three batches, nothing else.
    for r in replicas.values() {
        applied(&r.raft, last_index).await?;
    }
    let logs: Vec<_> = replicas.values().map(stored).collect::<Result<_, _>>()?;
    assert_eq!(logs[0].len(), 3);
    assert!(logs.iter().all(|l| *l == logs[0]));

    // The leader goes away; the new one de-duplicates a retry of the old leader's batch.
    let old = replicas.remove(&leader).ok_or("leader")?;
    old.raft.shutdown().await?;
    router.remove(leader);
    let rest: Vec<&Raft> = replicas.values().map(|r| &r.raft).collect();
    let new_leader = rest[0]
        .wait(WAIT)
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != leader),
            "a new leader",
        )
        .await?
        .current_leader
        .ok_or("no leader")?;
    let (retry, _) = send(&replicas[&new_leader].raft, batch(1, 0, 1)).await?;
    assert_eq!(
        retry,
        Applied::NotAppended(NotAppended::Duplicate {
            base_offset: 5,
            last_offset: 5
        })
    );
    let (after, _) = send(&replicas[&new_leader].raft, batch(1, 1, 1)).await?;
    assert_eq!(
        after,
        Applied::Batch {
            base_offset: 6,
            last_offset: 6
        }
    );
    for r in replicas.values() {
        r.raft.shutdown().await?;
    }
    Ok(())
}
