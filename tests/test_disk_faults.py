"""Disk faults against the real binary.

Faults come from the server's TEST-ONLY fault layer (--test-fault-injection true, driven with
PUT /test/faults) or from bytes flipped in a stopped server's segment files.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import confluent_kafka as ck

from clients import ck_create_topic, ck_consumer, ck_high_watermarks, ck_read_all
from harness import http_get, server_binary, wait_until
from kafka_wire import connect, fetch_v4_request, parse_fetch_v4, recv_frame

KAFKA_STORAGE_ERROR = 56

FAULTS = ["--test-fault-injection", "true"]


def set_faults(server, **plan) -> None:
    query = "&".join(f"{k}={v}" for k, v in plan.items())
    req = urllib.request.Request(server.url(f"/test/faults?{query}"), method="PUT")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0,
            timeout_ms: int = 30000) -> list[tuple[bytes, object, int]]:
    """Produce one batch per value; returns (value, error or None, offset) per message."""
    p = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all",
                     "message.timeout.ms": timeout_ms, "retry.backoff.ms": 100})
    out = []
    for v in values:
        p.produce(topic, value=v, partition=partition,
                  on_delivery=lambda err, msg, v=v: out.append((v, err, msg.offset())))
        p.flush(timeout_ms / 1000 + 10)
    assert len(out) == len(values)
    return out


def test_failed_fsync_is_never_acknowledged_and_the_node_turns_unready(server_factory, topic_name):
    server = server_factory(extra_args=FAULTS).start()
    ck_create_topic(server.bootstrap, topic_name, 1)
    ok = produce(server.bootstrap, topic_name, [b"before-0", b"before-1"])
    assert all(err is None for _, err, _ in ok)

    set_faults(server, fail_syncs=1)
    failed = produce(server.bootstrap, topic_name, [b"during"], timeout_ms=3000)
    assert failed[0][1] is not None, "a write whose fsync failed was acknowledged"

    wait_until(lambda: http_get(server.url("/health/ready"))[0] == 503, timeout=10,
               message="/health/ready turns 503 after an fsync error")
    assert server.log_text().count("fsync failed") == 1, "the fsync error is logged once"
    assert "00000000000000000000.log" in server.log_text(), "the log names the file"
    consumer = ck_consumer(server.bootstrap)
    try:
        assert ck_high_watermarks(consumer, topic_name, 1) == {0: 2}, "nothing unsynced is visible"
    finally:
        consumer.close()
    # A failed fsync is never retried: the log stays offline even when the disk recovers.
    set_faults(server)
    again = produce(server.bootstrap, topic_name, [b"after"], timeout_ms=3000)
    assert again[0][1] is not None


def test_disk_full_fails_produce_keeps_nothing_partial_and_resumes(server_factory, topic_name):
    server = server_factory(extra_args=FAULTS).start()
    ck_create_topic(server.bootstrap, topic_name, 1)
    first = produce(server.bootstrap, topic_name, [b"a", b"b"])
    set_faults(server, disk_full=1, torn_write_bytes=40)
    full = produce(server.bootstrap, topic_name, [b"lost-1", b"lost-2"], timeout_ms=2000)
    assert all(err is not None for _, err, _ in full), "nothing is acknowledged while the disk is full"
    set_faults(server)
    after = produce(server.bootstrap, topic_name, [b"c", b"d"])
    assert all(err is None for _, err, _ in first + after)
    assert http_get(server.url("/health/ready"))[0] == 200

    read = ck_read_all(server.bootstrap, topic_name, 1)
    assert [(o, v) for o, _, v in read[0]] == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d")]
    # Nothing partial after a restart either.
    server.stop()
    server.start()
    read = ck_read_all(server.bootstrap, topic_name, 1)
    assert [v for _, _, v in read[0]] == [b"a", b"b", b"c", b"d"]


def batch_positions(path: Path) -> list[tuple[int, int]]:
    """(position, size) of every record batch in a segment file."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        size = 12 + int.from_bytes(data[pos + 8:pos + 12], "big")
        out.append((pos, size))
        pos += size
    return out


def flip_in_records(path: Path, batch_index: int) -> None:
    """Flips a byte inside the records (not the header) of one batch: only the CRC can tell."""
    pos, size = batch_positions(path)[batch_index]
    flip_byte(path, pos + 61 + (size - 61) // 2)


def flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def run_check(server) -> subprocess.CompletedProcess:
    return subprocess.run([str(server_binary()), "check", "--data-dir", str(server.data_dir)],
                          capture_output=True, text=True, timeout=60)


def test_flipped_bytes_mid_segment_are_found_reported_and_never_served(server_factory, topic_name):
    server = server_factory().start()
    ck_create_topic(server.bootstrap, topic_name, 1)
    values = [f"value-{i:03}".encode() * 20 for i in range(50)]
    acks = produce(server.bootstrap, topic_name, values)
    assert [o for _, _, o in acks] == list(range(50))
    server.stop()

    assert run_check(server).returncode == 0, "a clean data dir passes the check"
    segment = server.data_dir / f"{topic_name}-0" / "00000000000000000000.log"
    flip_in_records(segment, 25)

    check = run_check(server)
    assert check.returncode == 1, check.stdout + check.stderr
    assert str(segment) in check.stdout, check.stdout
    assert "CRC mismatch" in check.stdout and "after offset 24" in check.stdout, check.stdout

    server.start()
    assert "recovery truncated the log" in server.log_text()
    read = ck_read_all(server.bootstrap, topic_name, 1)
    got = [(o, v) for o, _, v in read[0]]
    assert got == [(i, values[i]) for i in range(25)], "exactly the valid prefix is served"


def test_corruption_in_an_old_segment_fails_that_partition_only(server_factory, topic_name):
    server = server_factory().start()
    ck_create_topic(server.bootstrap, topic_name, 2, {"segment.bytes": "4000"})
    values = [f"v{i:04}".encode() * 50 for i in range(40)]
    produce(server.bootstrap, topic_name, values, partition=0)
    produce(server.bootstrap, topic_name, values[:5], partition=1)
    server.stop()
    pdir = server.data_dir / f"{topic_name}-0"
    segments = sorted(pdir.glob("*.log"))
    assert len(segments) > 2, "the topic rolled several segments"
    flip_in_records(segments[0], 1)
    assert run_check(server).returncode == 1

    server.start()
    # Raw Fetch v4: clients retry KAFKA_STORAGE_ERROR silently, so look at the wire.
    with connect(server.bootstrap) as sock:
        sock.sendall(fetch_v4_request(1, topic_name, 0, offset=0, max_wait_ms=0))
        at_start = parse_fetch_v4(recv_frame(sock), 1)[(topic_name, 0)]
        sock.sendall(fetch_v4_request(2, topic_name, 0, offset=1, max_wait_ms=0))
        at_corrupt = parse_fetch_v4(recv_frame(sock), 2)[(topic_name, 0)]
        sock.sendall(fetch_v4_request(3, topic_name, 1, offset=0, max_wait_ms=0))
        other = parse_fetch_v4(recv_frame(sock), 3)[(topic_name, 1)]
    assert at_start.error_code == 0 and at_start.records, "the batch before the corruption is served"
    assert values[1] not in at_start.records, "the corrupt batch is not served"
    assert at_corrupt.error_code == KAFKA_STORAGE_ERROR and not at_corrupt.records
    assert other.error_code == 0 and other.records, "the other partition is still served"
    assert "corrupt record batch on read" in server.log_text()
    read: dict[int, bytes] = {}
    c2 = ck_consumer(server.bootstrap)
    try:
        c2.assign([ck.TopicPartition(topic_name, 1, 0)])
        wait_until(lambda: read.update({m.offset(): m.value() for m in c2.consume(10, 0.5)
                                        if m.error() is None}) or len(read) == 5,
                   timeout=30, message="the other partition is read by a client")
    finally:
        c2.close()
    assert [read[i] for i in range(5)] == values[:5]
