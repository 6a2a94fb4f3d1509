"""kcat (the librdkafka command line client) against a real chronik-server.

kcat has no admin API, so topics are created with confluent-kafka's AdminClient
(same librdkafka underneath) or by broker auto-creation.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import defaultdict

import pytest

from clients import ck_consumer, ck_create_topic, ck_high_watermarks
from harness import wait_until

PARTITIONS = 4
# kcat is required, not optional: scripts/test.sh installs it.
KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def kcat(*args: str, stdin: bytes | None = None, timeout: float = 90.0) -> subprocess.CompletedProcess:
    assert KCAT is not None, "kcat is not installed (scripts/test.sh installs it)"
    proc = subprocess.run(
        [KCAT, *args],
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"kcat {' '.join(args)} exited {proc.returncode}\nstderr:\n{proc.stderr.decode(errors='replace')[-3000:]}"
    )
    return proc


def kcat_produce(bootstrap: str, topic: str, lines: list[str], *extra: str) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    kcat("-b", bootstrap, "-t", topic, "-P", "-K", ":", *extra, stdin=data)


def kcat_consume_all(bootstrap: str, topic: str) -> list[tuple[int, int, str, str]]:
    """Read every partition from the beginning until end of log (-e). Returns (partition, offset, key, value)."""
    proc = kcat("-b", bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-q",
                "-f", r"%p\t%o\t%k\t%s\n")
    out = []
    for line in proc.stdout.decode().splitlines():
        p, o, k, v = line.split("\t")
        out.append((int(p), int(o), k, v))
    return out


def check_roundtrip(lines: list[str], consumed: list[tuple[int, int, str, str]], partitions: int) -> None:
    sent_kv = [tuple(line.split(":", 1)) for line in lines]
    got_kv = [(k, v) for (_, _, k, v) in consumed]
    # exact set, no duplicates
    assert sorted(got_kv) == sorted(sent_kv)
    by_part: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for p, o, k, v in consumed:
        by_part[p].append((o, k, v))
    assert set(by_part) == set(range(partitions)), f"records landed in partitions {sorted(by_part)}"
    send_index = {kv: i for i, kv in enumerate(sent_kv)}
    for p, recs in by_part.items():
        recs.sort()
        assert [o for o, _, _ in recs] == list(range(len(recs))), f"partition {p}: offsets not contiguous"
        idx = [send_index[(k, v)] for _, k, v in recs]
        assert idx == sorted(idx), f"partition {p}: offset order differs from send order"
    # keyed partitioning: one key always maps to one partition
    key_parts = defaultdict(set)
    for p, _, k, _ in consumed:
        key_parts[k].add(p)
    assert all(len(ps) == 1 for ps in key_parts.values()), "a key was spread over several partitions"


def make_lines(n: int, tag: str, keys: int = 64) -> list[str]:
    return [f"key{i % keys}:{tag}-{i:06d}-chronik-kcat-payload" for i in range(n)]


def test_kcat_metadata_lists_broker_and_topics(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, PARTITIONS)
    text = kcat("-b", server.bootstrap, "-L").stdout.decode()
    assert re.search(r"^\s*1 brokers:\s*$", text, re.M), text
    assert re.search(rf"^\s*broker 1 at 127\.0\.0\.1:{server.kafka_port}\b", text, re.M), text
    assert re.search(rf'^\s*topic "{re.escape(topic_name)}" with {PARTITIONS} partitions:', text, re.M), text

    md = json.loads(kcat("-b", server.bootstrap, "-L", "-J").stdout)
    assert [(b["id"], b["name"]) for b in md["brokers"]] == [(1, f"127.0.0.1:{server.kafka_port}")]
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic_name in topics
    parts = topics[topic_name]["partitions"]
    assert sorted(p["partition"] for p in parts) == list(range(PARTITIONS))
    assert all(p["leader"] == 1 for p in parts)


# kcat's producer on librdkafka's defaults (enable.idempotence=false) and idempotent.
IDEMPOTENCE = {"default": (), "idempotent": ("-X", "enable.idempotence=true")}


@pytest.mark.parametrize("idempotence", list(IDEMPOTENCE))
@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_10k_over_4_partitions_and_consume(server, topic_name, compression, idempotence):
    ck_create_topic(server.bootstrap, topic_name, PARTITIONS)
    lines = make_lines(10_000, f"kcat-{compression}-{idempotence}")

    kcat_produce(server.bootstrap, topic_name, lines, "-z", compression, "-X", "acks=all",
                 *IDEMPOTENCE[idempotence])
    consumed = kcat_consume_all(server.bootstrap, topic_name)

    check_roundtrip(lines, consumed, PARTITIONS)


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_kcat_acks_modes_all_messages_readable(server, topic_name, acks):
    ck_create_topic(server.bootstrap, topic_name, PARTITIONS)
    lines = make_lines(1_000, f"kcat-acks{acks}")

    kcat_produce(server.bootstrap, topic_name, lines, "-X", f"acks={acks}")
    # acks=0 gives no confirmation: wait (bounded) until everything is readable.
    consumer = ck_consumer(server.bootstrap)
    try:
        wait_until(lambda: sum(ck_high_watermarks(consumer, topic_name, PARTITIONS).values()) >= len(lines),
                   timeout=30, interval=0.1, message="all records to be written")
    finally:
        consumer.close()
    consumed = kcat_consume_all(server.bootstrap, topic_name)

    check_roundtrip(lines, consumed, PARTITIONS)


def test_kcat_produce_to_explicit_partition(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, PARTITIONS)
    lines = make_lines(100, "kcat-p2")
    kcat_produce(server.bootstrap, topic_name, lines, "-p", "2")
    consumed = kcat_consume_all(server.bootstrap, topic_name)
    assert [(p, o) for p, o, _, _ in consumed] == [(2, i) for i in range(100)]
    assert [f"{k}:{v}" for _, _, k, v in consumed] == lines


def test_kcat_produce_auto_creates_topic_with_broker_default_partitions(server_factory, topic_name):
    srv = server_factory(extra_args=["--num-partitions", "3", "--auto-create-topics-enable", "true"]).start()
    lines = make_lines(300, "kcat-auto", keys=30)

    kcat_produce(srv.bootstrap, topic_name, lines)

    md = json.loads(kcat("-b", srv.bootstrap, "-L", "-J", "-t", topic_name).stdout)
    [t] = md["topics"]
    assert t["topic"] == topic_name
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    check_roundtrip(lines, kcat_consume_all(srv.bootstrap, topic_name), 3)


def kcat_group_consume(bootstrap: str, group: str, topic: str) -> list[tuple[int, int, str, str]]:
    """kcat as a balanced group consumer (-G) with librdkafka's defaults (auto commit on), until
    the end of every assigned partition (-e).  Returns (partition, offset, key, value)."""
    proc = kcat("-b", bootstrap, "-G", group, topic, "-X", "auto.offset.reset=earliest", "-e", "-q",
                "-f", r"%p\t%o\t%k\t%s\n")
    out = []
    for line in proc.stdout.decode().splitlines():
        p, o, k, v = line.split("\t")
        out.append((int(p), int(o), k, v))
    return out


def test_kcat_group_consumer_reads_once_and_resumes_from_commits(server_factory, topic_name):
    from groups import group_args

    srv = server_factory(extra_args=group_args(0)).start()
    ck_create_topic(srv.bootstrap, topic_name, PARTITIONS)
    first = make_lines(1_000, "kcat-group-1")
    kcat_produce(srv.bootstrap, topic_name, first)
    check_roundtrip(first, kcat_group_consume(srv.bootstrap, "kcat-group", topic_name), PARTITIONS)

    # The same group again: only what was produced since (its offsets were committed on close).
    second = make_lines(40, "kcat-group-2")
    kcat_produce(srv.bootstrap, topic_name, second)
    again = kcat_group_consume(srv.bootstrap, "kcat-group", topic_name)
    assert sorted(f"{k}:{v}" for _, _, k, v in again) == sorted(second)
    # ... starting in each partition exactly at the first run's end.
    everything = kcat_consume_all(srv.bootstrap, topic_name)
    first_set = set(first)
    for p in range(PARTITIONS):
        first_count = sum(1 for pp, _, k, v in everything if pp == p and f"{k}:{v}" in first_set)
        offsets = sorted(o for pp, o, _, _ in again if pp == p)
        assert offsets == list(range(first_count, first_count + len(offsets))), (
            f"partition {p}: second run read offsets {offsets[:5]}..., first run ended at {first_count}")
