//! `Flusher`: the node-wide group commit of Raft log appends. An append writes its batches to
//! the page cache and hands the segment file to the flusher with openraft's callback; the
//! flusher takes every request queued so far, fdatasyncs each distinct file once (the files of
//! a round concurrently, off the async runtime's threads) and then reports the appends durable,
//! in the order they were queued. A failed fdatasync is reported as an error (openraft stops
//! the group: never retried, never acknowledged).

use crate::types::ChronikRaft;
use chronik_storage::fs::LogFile;
use openraft::storage::LogFlushed;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Run once the append is durable, before openraft is told.
pub type OnDurable = Box<dyn FnOnce() + Send>;

struct FlushRequest {
    file: Arc<dyn LogFile>,
    path: PathBuf,
    callback: LogFlushed<ChronikRaft>,
    on_durable: OnDurable,
}

#[derive(Clone)]
pub struct Flusher {
    tx: mpsc::UnboundedSender<FlushRequest>,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Flusher")
    }
}

impl Flusher {
    /// Starts the flusher task (in the current tokio runtime).
    pub fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx));
        Self { tx }
    }

    /// Reports `callback` durable (after running `on_durable`) once `file` has been
    /// fdatasynced after this call.
    pub fn flush(
        &self,
        file: Arc<dyn LogFile>,
        path: PathBuf,
        callback: LogFlushed<ChronikRaft>,
        on_durable: OnDurable,
    ) {
        if let Err(mpsc::error::SendError(req)) = self.tx.send(FlushRequest {
            file,
            path,
            callback,
            on_durable,
        }) {
            req.callback
                .log_io_completed(Err(std::io::Error::other("the flusher stopped")));
        }
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<FlushRequest>) {
    while let Some(first) = rx.recv().await {
        let mut round = vec![first];
        while let Ok(r) = rx.try_recv() {
            round.push(r);
        }
        // One fdatasync per distinct file, all of them at once.
        let mut files: Vec<(Arc<dyn LogFile>, PathBuf)> = Vec::new();
        for r in &round {
            if !files.iter().any(|(f, _)| Arc::ptr_eq(f, &r.file)) {
                files.push((Arc::clone(&r.file), r.path.clone()));
            }
        }
        let started = std::time::Instant::now();
        let syncs: Vec<_> = files
            .into_iter()
            .map(|(file, path)| {
                tokio::task::spawn_blocking(move || (Arc::clone(&file), path, file.sync_data()))
            })
            .collect();
        let mut failed: Vec<(Arc<dyn LogFile>, String)> = Vec::new();
        for s in syncs {
            match s.await {
                Ok((_, _, Ok(()))) => {}
                Ok((file, path, Err(e))) => {
                    tracing::error!(path = %path.display(), error = %e, "fdatasync of a Raft log failed");
                    failed.push((file, e.to_string()));
                }
                Err(e) => tracing::error!(error = %e, "fdatasync task failed"),
            }
        }
        metrics::histogram!("chronik_raft_fsync_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("chronik_raft_fsync_round_requests").record(round.len() as f64);
        for r in round {
            let result = match failed.iter().find(|(f, _)| Arc::ptr_eq(f, &r.file)) {
                Some((_, e)) => Err(std::io::Error::other(e.clone())),
                None => {
                    (r.on_durable)();
                    Ok(())
                }
            };
            r.callback.log_io_completed(result);
        }
    }
}
