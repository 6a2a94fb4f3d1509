//! Group commit: appends on every partition of the node share one round of fdatasync.
//!
//! Appenders write to the page cache, then ask for a flush and wait. The flusher takes every
//! request queued so far, fdatasyncs each distinct file once, advances the high watermarks, and
//! answers all of them. Requests arriving during a round wait for the next round. A failed fsync
//! is never retried: the partition's log goes offline and nothing more is acknowledged from it.

use crate::partition::Partition;
use chronik_types::Offset;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

/// The outcome of a flush for one partition: the new high watermark, or the fsync error.
pub type FlushResult = Result<Offset, String>;

struct FlushRequest {
    partition: Arc<Partition>,
    done: Option<oneshot::Sender<FlushResult>>,
}

/// A pending flush; `wait` gives its result.
pub struct FlushWait(Option<oneshot::Receiver<FlushResult>>);

impl FlushWait {
    pub async fn wait(self) -> FlushResult {
        match self.0 {
            Some(rx) => rx.await.unwrap_or_else(|_| Err("flusher stopped".into())),
            None => Err("flusher stopped".into()),
        }
    }
}

/// Handle to the flusher task.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::UnboundedSender<FlushRequest>,
}

impl GroupCommit {
    /// Starts the flusher; `flushed` is notified after every round that moved a high watermark.
    pub fn start(flushed: Arc<Notify>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, flushed));
        Self { tx }
    }

    /// Asks for `partition` to be flushed now; the returned wait resolves once what the log
    /// holds at this moment is on disk. Ask for every partition first, then wait, so that they
    /// share one round.
    pub fn request(&self, partition: Arc<Partition>) -> FlushWait {
        let (done, wait) = oneshot::channel();
        let sent = self.tx.send(FlushRequest {
            partition,
            done: Some(done),
        });
        FlushWait(sent.ok().map(|_| wait))
    }

    /// Schedules a flush without waiting (acks=0).
    pub fn flush_later(&self, partition: Arc<Partition>) {
        // If the flusher is gone the server is stopping and shutdown flushes everything.
        let _ = self.tx.send(FlushRequest {
            partition,
            done: None,
        });
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<FlushRequest>, flushed: Arc<Notify>) {
    while let Some(first) = rx.recv().await {
        let mut round = vec![first];
        while let Ok(r) = rx.try_recv() {
            round.push(r);
        }
        let mut partitions: Vec<Arc<Partition>> = Vec::new();
        for r in &round {
            if !partitions.iter().any(|p| Arc::ptr_eq(p, &r.partition)) {
                partitions.push(Arc::clone(&r.partition));
            }
        }
        metrics::histogram!("chronik_group_commit_round_partitions")
            .record(partitions.len() as f64);
        let results = flush_round(partitions).await;
        flushed.notify_waiters();
        for r in round {
            let result = results
                .iter()
                .find(|(p, _)| Arc::ptr_eq(p, &r.partition))
                .map(|(_, res)| res.clone())
                .unwrap_or_else(|| Err("flush round failed".into()));
            if let Some(done) = r.done {
                let _ = done.send(result);
            }
        }
    }
}

/// fdatasyncs each partition's active segment once, all of them at the same time (so the
/// device can merge them), then advances the high watermarks.
async fn flush_round(partitions: Vec<Arc<Partition>>) -> Vec<(Arc<Partition>, FlushResult)> {
    let mut pending = Vec::with_capacity(partitions.len());
    for p in partitions {
        let target = p.with_log(|log| log.sync_target().map(|t| (t, log.high_watermark())));
        let job = match target {
            Ok((Some(t), _)) => {
                let file = Arc::clone(&t.file);
                Ok((
                    t,
                    tokio::task::spawn_blocking(move || {
                        let started = std::time::Instant::now();
                        let result = file.sync_data();
                        metrics::histogram!("chronik_fsync_duration_seconds")
                            .record(started.elapsed().as_secs_f64());
                        result
                    }),
                ))
            }
            Ok((None, hw)) => Err(Ok(hw)),
            Err(e) => Err(Err(e.to_string())),
        };
        pending.push((p, job));
    }
    let mut out = Vec::with_capacity(pending.len());
    for (p, job) in pending {
        let result = match job {
            Err(done) => done,
            Ok((t, sync)) => match sync.await {
                Ok(Ok(())) => Ok(p.with_log(|log| {
                    log.mark_flushed(t.upto);
                    log.high_watermark()
                })),
                Ok(Err(e)) => {
                    p.with_log(|log| log.mark_offline());
                    tracing::error!(path = %t.path.display(), error = %e, "fsync failed; log is offline");
                    Err(format!("fsync of {} failed: {e}", t.path.display()))
                }
                Err(e) => {
                    p.with_log(|log| log.mark_offline());
                    Err(format!(
                        "fsync of {} did not complete: {e}",
                        t.path.display()
                    ))
                }
            },
        };
        out.push((p, result));
    }
    out
}
