//! Every named limit and default, with its unit last in the name.

/// Largest request frame accepted (Kafka's `socket.request.max.bytes`), checked before allocating.
pub const FRAME_BYTES_MAX: usize = 100 * 1024 * 1024;
/// Concurrent client connections accepted before new ones are refused.
pub const CONNECTIONS_MAX: usize = 10_000;
/// Requests read ahead on one connection while earlier responses are still being produced.
pub const IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX: usize = 32;

/// Kafka's `max.message.bytes` default: the largest record batch a topic accepts.
pub const MESSAGE_BYTES_DEFAULT: i32 = 1_048_588;
/// Kafka's `segment.bytes` default.
pub const SEGMENT_BYTES_DEFAULT: i64 = 1024 * 1024 * 1024;
/// Smallest `segment.bytes` Kafka accepts.
pub const SEGMENT_BYTES_MIN: i64 = 14;
/// Kafka's `segment.ms` default (7 days).
pub const SEGMENT_MS_DEFAULT: i64 = 7 * 24 * 60 * 60 * 1000;
/// Kafka's `retention.ms` default (7 days); -1 means unlimited.
pub const RETENTION_MS_DEFAULT: i64 = 7 * 24 * 60 * 60 * 1000;
/// Kafka's `retention.bytes` default; -1 means unlimited.
pub const RETENTION_BYTES_DEFAULT: i64 = -1;
/// Kafka's `index.interval.bytes`: bytes of log between two offset-index entries.
pub const INDEX_INTERVAL_BYTES: u64 = 4096;

/// Longest topic name Kafka accepts.
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;
/// Most partitions one topic may have.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

/// Size of a record batch header (magic v2) up to and including `records_count`.
pub const RECORD_BATCH_HEADER_BYTES: usize = 61;
/// Bytes before the batch length field: `base_offset` (8) + `batch_length` (4).
pub const RECORD_BATCH_LOG_OVERHEAD_BYTES: usize = 12;

/// Cached incremental fetch sessions (Kafka's `max.incremental.fetch.session.cache.slots`).
pub const FETCH_SESSIONS_MAX: usize = 1000;
/// Longest a Fetch may wait for data, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

/// How often retention is checked by default (`--log-retention-check-interval-ms`; Kafka's
/// `log.retention.check.interval.ms` is 5 minutes).
pub const RETENTION_CHECK_INTERVAL_MS: u64 = 30_000;
/// How often the recovery-point checkpoint is written.
pub const RECOVERY_POINT_CHECKPOINT_INTERVAL_MS: u64 = 10_000;
/// How often compacted topics are checked for new closed segments (Kafka's `log.cleaner.backoff.ms`).
pub const COMPACTION_CHECK_INTERVAL_MS: u64 = 15_000;

/// Largest frame on the peer (Raft) transport: an AppendEntries of up to
/// `APPEND_ENTRIES_MAX` default-sized batches fits; a larger one is sent in smaller pieces.
pub const PEER_FRAME_BYTES_MAX: usize = 128 * 1024 * 1024;
/// Requests queued to one peer before new ones fail at once (a slow peer cannot make the
/// queue grow without bound).
pub const PEER_QUEUE_REQUESTS_MAX: usize = 4096;
/// Bytes of requests queued to one peer before new ones fail at once (the peer is then treated
/// as unreachable and backed off from): with `PEER_QUEUE_REQUESTS_MAX`, a slow or stopped peer
/// holds at most this much of the sender's memory. At least `PEER_FRAME_BYTES_MAX`.
pub const PEER_QUEUE_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Requests from one peer connection handled at once.
pub const PEER_IN_FLIGHT_REQUESTS_MAX: usize = 4096;
/// Bytes of requests from one peer connection handled at once; beyond it the connection is not
/// read (TCP pushes back on the sender). At least `PEER_FRAME_BYTES_MAX`.
pub const PEER_IN_FLIGHT_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Reconnection backoff to an unreachable peer: first delay and cap.
pub const PEER_BACKOFF_MIN_MS: u64 = 50;
pub const PEER_BACKOFF_MAX_MS: u64 = 2_000;
/// How long a connection attempt to a peer may take.
pub const PEER_CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Kafka's `replica.lag.time.max.ms`: a follower that has not caught up with its leader's log
/// end for this long is no longer in sync.
pub const REPLICA_LAG_TIME_MAX_MS: i64 = 30_000;
/// Kafka's `offsets.commit.timeout.ms`: how long the group coordinator waits for its records
/// (offset commits, group membership) to be stored in `__consumer_offsets` (fsynced, or
/// committed by its Raft group) before it answers COORDINATOR_NOT_AVAILABLE. It holds the
/// coordinator meanwhile, so one stalled partition must not hold every group for ever.
pub const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;
/// How long the transaction coordinator waits for its records to be stored in
/// `__transaction_state` before it answers COORDINATOR_NOT_AVAILABLE (the client retries).
/// Kafka bounds this write by `request.timeout.ms` (30 s); Chronik's coordinator holds every
/// transactional id of the node meanwhile, so it waits no longer than for offset commits.
pub const TXN_STATE_WRITE_TIMEOUT_MS: u64 = OFFSETS_COMMIT_TIMEOUT_MS;
/// Kafka's check-quorum: a Raft leader that has had no acknowledgement from a majority of its
/// group for this long no longer presents itself as the leader (Metadata LEADER_NOT_AVAILABLE,
/// Produce and Fetch NOT_LEADER_OR_FOLLOWER), so clients go and find the new one. About the
/// earliest the other replicas can have elected one (their leader lease, 0.6 s, then their
/// election timeout, 0.5 s). Its Raft state is unchanged: it steps down when it hears of a
/// higher term.
pub const LEADER_QUORUM_ACK_TIMEOUT_MS: u64 = 1_000;
/// How long a leader handing its partition over to the preferred replica waits for the
/// preferred replica's election before it gives up and leads on (about twice the longest
/// time the preferred replica needs: its followers' leases, then its election timeout).
pub const LEADER_HANDOVER_TIMEOUT_MS: i64 = 3_000;
/// A leader hands over only to a preferred replica that answered this node within this long
/// (it is up: a leader's heartbeats are answered every 100 ms) ...
pub const LEADER_HANDOVER_PEER_ANSWERED_WITHIN_MS: u64 = 1_000;
/// ... and is at most this many Raft entries behind the leader's log end.
pub const LEADER_HANDOVER_LAG_ENTRIES_MAX: u64 = 256;
/// After a hand-over that did not happen, how long before that partition is tried again.
pub const LEADER_HANDOVER_RETRY_BACKOFF_MS: i64 = 30_000;
