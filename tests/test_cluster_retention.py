"""Retention of replicated logs (three real nodes): every replica deletes the segments its
topic's retention.bytes no longer wants, after its Raft group purged their entries; what is left
reads back as the tail of what was acknowledged, the state of the (idempotent) producers of the
deleted batches is kept; and a follower that was down while the leader
deleted past its log end starts its log over where the leader's snapshot ends, holding then
exactly the leader's batches from there on.
"""

from __future__ import annotations

import json
import signal
import struct

import pytest

from cluster_harness import Cluster
from clients import ck_produce, kp_read_all, make_messages
from harness import wait_until

SEGMENT_BYTES = 4096
RETENTION_BYTES = 16384
# Retention rounds every 200 ms instead of every 30 s, so the test waits for conditions only.
ARGS = ["--log-retention-check-interval-ms", "200"]
TOPIC_CONFIGS = {"segment.bytes": str(SEGMENT_BYTES), "retention.bytes": str(RETENTION_BYTES)}
# One record per batch, so the records fill many small segments. Idempotent: the producer's
# state outlives its deleted batches (producer-state files; docs/design/replication.md).
PRODUCER_CONF = {"acks": "all", "enable.idempotence": True, "linger.ms": 0, "batch.num.messages": 1}
WAIT_S = 30.0


def batches(data: bytes) -> list[tuple[int, int, bytes]]:
    """(base offset, next offset, bytes) of each record batch in concatenated segment data."""
    out, pos = [], 0
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        (last_delta,) = struct.unpack_from(">i", data, pos + 23)
        end = pos + 12 + length
        out.append((base, base + last_delta + 1, data[pos:end]))
        pos = end
    return out


def log_bytes(c: Cluster, node: int, topic: str) -> bytes:
    return b"".join(c.segment_files(node, topic, 0).values())


def values(read: dict) -> list[bytes]:
    return [v for (_, _, v) in read[0]]


@pytest.mark.timeout(240)
def test_retention_deletes_segments_on_every_replica_and_a_follower_behind_it_starts_over(
        server_factory, topic_name):
    c = Cluster(server_factory, size=3, extra_args=ARGS).start()
    leader = c.create_topic(topic_name, 1, configs=TOPIC_CONFIGS)[0]
    follower = next(i for i in c.ids if i != leader)

    first = make_messages(300, 1, "first")
    ck_produce(c.bootstrap(), topic_name, first, **PRODUCER_CONF)

    def trimmed():
        sizes = {i: sum(c.segment_sizes(i, topic_name, 0).values()) for i in c.ids}
        starts = {i: c.partition_status(i, topic_name, 0)["log_start_offset"] for i in c.ids}
        ok = all(starts[i] > 0 and sizes[i] <= RETENTION_BYTES for i in c.ids)
        return (sizes, starts) if ok else None

    wait_until(trimmed, timeout=WAIT_S, interval=0.1,
               message="every replica to delete the segments beyond retention.bytes")
    read = values(kp_read_all(c.bootstrap(), topic_name, 1))
    sent = [m.value for m in first]
    assert read and read == sent[len(sent) - len(read):], \
        "what is left must be the tail of what was acknowledged, in order"

    # A follower down while the leader deletes past its log end.
    c[follower].kill9()
    follower_end = batches(log_bytes(c, follower, topic_name))[-1][1]
    second = make_messages(300, 1, "second")
    ck_produce(c.bootstrap(), topic_name, second, **PRODUCER_CONF)
    leader_now = c.wait_leader(topic_name, 0, exclude=(follower,))
    wait_until(lambda: c.partition_status(leader_now, topic_name, 0)["log_start_offset"] > follower_end,
               timeout=WAIT_S, interval=0.1,
               message=f"the leader's log to start past the stopped follower's end {follower_end}")

    c[follower].start()
    third = make_messages(20, 1, "third")
    ck_produce(c.bootstrap(), topic_name, third, **PRODUCER_CONF)

    def caught_up():
        st = {i: c.partition_status(i, topic_name, 0) for i in c.ids}
        hw = st[leader_now]["high_watermark"]
        return all(s["log_end_offset"] == hw for s in st.values())

    wait_until(caught_up, timeout=WAIT_S, interval=0.1, message="the follower to catch up")
    read = values(kp_read_all(c.bootstrap(), topic_name, 1))
    sent = [m.value for m in first + second + third]
    assert read == sent[len(sent) - len(read):]

    for i in c.ids:
        assert c[i].stop(signal.SIGTERM) == 0, f"node {i} did not stop cleanly"
    # Every replica holds the leader's batches, byte for byte, over the offsets both have, up
    # to the same end; the follower's log starts past the end it had (it started over).
    reference = batches(log_bytes(c, leader_now, topic_name))
    for i in c.ids:
        mine = batches(log_bytes(c, i, topic_name))
        assert mine, f"node {i} has no batches"
        common = max(mine[0][0], reference[0][0])
        assert [b[2] for b in mine if b[0] >= common] == \
            [b[2] for b in reference if b[0] >= common], f"node {i} differs from the leader"
        if i == follower:
            assert mine[0][0] > follower_end, (
                f"the follower kept data below the leader's snapshot: starts at {mine[0][0]}, "
                f"had up to {follower_end}")
        # The producer state of the deleted batches is kept in a producer-state file within
        # the log kept, naming the producers of those batches.
        files = sorted(c.partition_dir(i, topic_name, 0).glob("*.producer-state"))
        assert files, f"node {i} has no producer-state file"
        state = json.loads(files[-1].read_bytes())
        assert mine[0][0] <= state["offset"] <= mine[-1][1] and state["producers"]["producers"], \
            f"node {i}: producer state {state}, log {mine[0][0]}..{mine[-1][1]}"
