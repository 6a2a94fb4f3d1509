"""Cluster mode, black-box: three real chronik-server processes started with --peer.

Covered:
  1. formation in every start order (1,2,3 / 3,2,1 / one node only after the other two are
     ready, with produce and consume working while it is absent): every node answers
     ApiVersions and a Metadata listing all three brokers, to kafka-python and confluent-kafka;
  2. kill -9 of a partition leader during continuous acks=all produce with an idempotent
     producer: produce continues, every acknowledged value is read back exactly once, and the
     failover time is measured;
  3. kill -9 of a follower, produce while it is down, restart: once it has caught up, the
     partition's segment files are byte-identical on all three nodes;
  4. rolling restart (SIGTERM, restart, ready, next) under continuous produce and consume;
     afterwards every partition is led by its preferred replica again (leader rebalancing);
  5. a leader whose followers are frozen (SIGSTOP) acknowledges no acks=all write;
  6. concurrent FindCoordinator requests while __consumer_offsets is created are all answered
     (they once hung a node);
  7. the coordinator of a consumer group is killed: a new member resumes at the committed offset;
  8. topics of replication factor 1 and 2 (fewer replicas than nodes): every node lists every
     partition with its leader, clients bootstrapped at any node produce to all of them, and a
     node without a replica answers NOT_LEADER_OR_FOLLOWER;
  9. the leader's fdatasync fails (fault injection): that node stops with an error (as Kafka
     stops a broker whose log dirs failed), another replica leads, nothing acknowledged is lost
     or duplicated.

One-shot reads use kafka-python without a group (group_id=None); the continuous consumer that
must survive leader changes is confluent-kafka.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import signal
import threading
import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import AdminClient

from cluster_harness import Cluster
from clients import (
    assert_read_matches,
    ck_consumer,
    ck_produce,
    ck_producer,
    kp_consumer,
    kp_read_all,
    make_messages,
)
from harness import http_get, wait_until
from kafka_wire import assert_serving, connect, recv_frame

# Generous bound on the failover time (kill -9 of the leader -> first acks=all delivery of a
# message sent after the kill). A follower waits out the leader lease (1 s) plus its election
# timeout (0.5-1 s) before campaigning, so ~2 s is normal; the rest is client metadata refresh.
FAILOVER_MAX_S = 15.0
# How long the cluster may take to make progress again after a node left or came back.
# These waits are about progress, not latency (a new leader is normally elected in ~2 s).
PROGRESS_TIMEOUT_S = 30.0

# Not idempotent: duplicates from retries are possible (test 2 uses an idempotent producer).
PRODUCER_CONF = {"acks": "all", "enable.idempotence": False, "linger.ms": 2}


@pytest.fixture
def cluster(server_factory) -> Cluster:
    """Three nodes, configured but not started; killed (and SIGCONTed) at teardown."""
    return Cluster(server_factory, size=3)


# ---------------------------------------------------------------------------
# continuous clients (each in its own thread; librdkafka releases the GIL)
# ---------------------------------------------------------------------------


class ContinuousProducer(threading.Thread):
    """Produces unique values round-robin over the partitions at a steady pace until stopped,
    and records every delivery report with the time it was served."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, tag: str,
                 interval_s: float = 0.004, **conf):
        super().__init__(name=f"producer-{tag}", daemon=True)
        self.bootstrap, self.topic, self.partitions, self.tag = bootstrap, topic, partitions, tag
        self.interval_s = interval_s
        self.conf = {**PRODUCER_CONF, **conf}
        self.lock = threading.Lock()
        self.sent_at: dict[str, float] = {}                      # value -> time of produce()
        self.acked: dict[str, tuple[int, int, float]] = {}       # value -> (partition, offset, time)
        self.failed: dict[str, str] = {}                         # value -> delivery error
        self.undelivered_after_flush: int | None = None
        self.exc: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            producer = ck_producer(self.bootstrap, **self.conf)
            for seq in itertools.count():
                if self._halt.is_set():
                    break
                value = f"{self.tag}-{seq:07d}"
                with self.lock:
                    self.sent_at[value] = time.monotonic()
                while True:
                    try:
                        producer.produce(self.topic, value=value.encode(),
                                         partition=seq % self.partitions, on_delivery=self._report)
                        break
                    except BufferError:
                        producer.poll(0.05)
                producer.poll(self.interval_s)
            self.undelivered_after_flush = producer.flush(60)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread by stop()
            self.exc = e

    def _report(self, err, msg) -> None:
        now = time.monotonic()
        value = msg.value().decode()
        with self.lock:
            if err is None:
                self.acked[value] = (msg.partition(), msg.offset(), now)
            else:
                self.failed[value] = str(err)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def acked_per_partition(self) -> dict[int, int]:
        with self.lock:
            out = {p: 0 for p in range(self.partitions)}
            for p, _, _ in self.acked.values():
                out[p] += 1
            return out

    def acked_values(self) -> set[str]:
        with self.lock:
            return set(self.acked)

    def stop(self) -> None:
        """Stop producing, deliver what is queued (flush), and re-raise a thread failure."""
        self._halt.set()
        self.join(90)
        assert not self.is_alive(), "producer thread did not finish"
        if self.exc is not None:
            raise self.exc
        assert self.undelivered_after_flush == 0, (
            f"{self.undelivered_after_flush} messages without a delivery report after flush")


class ContinuousConsumer(threading.Thread):
    """Reads every partition from the beginning until stopped, recording (partition, offset,
    value) of every record. confluent-kafka, manual assignment, nothing committed: unlike
    kafka-python 3.0.12 it keeps fetching after a leader change (kafka-python then insists on
    OffsetForLeaderEpoch, which the server does not offer, and stops fetching the partition)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        super().__init__(name=f"consumer-{topic}", daemon=True)
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.lock = threading.Lock()
        self.records: list[tuple[int, int, str]] = []
        self.errors: list[str] = []
        self.exc: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            consumer = ck_consumer(self.bootstrap)
            try:
                consumer.assign([ck.TopicPartition(self.topic, p, ck.OFFSET_BEGINNING)
                                 for p in range(self.partitions)])
                while not self._halt.is_set():
                    for msg in consumer.consume(num_messages=500, timeout=0.2):
                        if msg.error() is not None:
                            with self.lock:
                                self.errors.append(str(msg.error()))
                            continue
                        with self.lock:
                            self.records.append((msg.partition(), msg.offset(), msg.value().decode()))
            finally:
                consumer.close()
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread by stop()
            self.exc = e

    def per_partition(self) -> dict[int, int]:
        with self.lock:
            out = {p: 0 for p in range(self.partitions)}
            for p, _, _ in self.records:
                out[p] += 1
            return out

    def values(self) -> set[str]:
        with self.lock:
            return {v for _, _, v in self.records}

    def stop(self) -> None:
        self._halt.set()
        self.join(60)
        assert not self.is_alive(), "consumer thread did not finish"
        if self.exc is not None:
            raise self.exc


def find_coordinator_v2(key: str, correlation_id: int, key_type: int = 0) -> bytes:
    from kafka.protocol.metadata import FindCoordinatorRequest

    req = FindCoordinatorRequest(key=key, key_type=key_type)
    req.with_header(correlation_id=correlation_id, client_id="chronik-cluster-test")
    return req.encode(version=2, header=True, framed=True)


def coordinator_id(bootstrap: str, group: str, key_type: int = 0) -> int:
    """The node FindCoordinator (v2) names for `group` (key_type 1: a transactional id)."""
    import struct

    with connect(bootstrap) as s:
        s.sendall(find_coordinator_v2(group, correlation_id=7, key_type=key_type))
        frame = recv_frame(s, timeout=30)
    # correlation id, throttle_time_ms, error_code, error_message (nullable string), node_id
    _, _, error = struct.unpack_from(">iih", frame, 0)
    assert error == 0, f"FindCoordinator({group}) answered error {error}"
    (msg_len,) = struct.unpack_from(">h", frame, 10)
    (node_id,) = struct.unpack_from(">i", frame, 12 + max(msg_len, 0))
    return node_id


def read_values(bootstrap: str, topic: str, partitions: int) -> list[str]:
    """Every value of the topic up to the high watermarks (manual assignment, from offset 0)."""
    log = kp_read_all(bootstrap, topic, partitions, timeout=60)
    return [v.decode() for recs in log.values() for (_, _, v) in recs]


# ---------------------------------------------------------------------------
# per-node ApiVersions + Metadata, for each client library
# ---------------------------------------------------------------------------


def kp_node_view(bootstrap: str, node_id: int) -> tuple[dict, dict[int, str]]:
    """kafka-python, bootstrapped at this node only: the ApiVersions answer of node `node_id`
    (a fresh connection to it) and the brokers its own Metadata answer lists. The Metadata
    request is sent to that node explicitly (kafka-python's admin API would pick any broker),
    through the client's connection manager (kafka-python is pinned in requirements.txt)."""
    from kafka import KafkaAdminClient
    from kafka.protocol.metadata import MetadataRequest

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        api_versions = admin.get_broker_version_data(node_id).api_versions

        async def metadata():
            return await admin._manager.send(MetadataRequest(topics=[]), node_id=node_id)

        resp = admin._manager.run(metadata)
        return api_versions, {b.node_id: f"{b.host}:{b.port}" for b in resp.brokers}
    finally:
        admin.close()


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


# librdkafka debug lines: "FAC [rdkafka#producer-1] [thrd:...]: 127.0.0.1:PORT/NAME: message"
_RDK_LINE = re.compile(r"\]: (\d+\.\d+\.\d+\.\d+:\d+)/\S+?: (.*)$")
_RDK_BROKER = re.compile(r"^\s*Broker #\d+/(\d+): (\S+) NodeId (-?\d+)$")
_RDK_COUNT = re.compile(r"^(\d+) brokers, \d+ topics$")

_ck_client_ids = itertools.count()


def ck_node_view(address: str) -> tuple[list[str], dict[int, str], set[int]]:
    """confluent-kafka (librdkafka), bootstrapped at `address` only. librdkafka may send later
    requests to any broker it learned of, so what this node itself answered is taken from the
    client's protocol/metadata debug log of the connections to `address`: returns its
    ApiVersions outcome lines, the brokers its Metadata answers listed, and the broker counts
    those answers announced."""
    handler = _Lines()
    logger = logging.getLogger(f"chronik.test.librdkafka.{next(_ck_client_ids)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    admin = AdminClient({"bootstrap.servers": address, "debug": "protocol,metadata"}, logger=logger)
    md = admin.list_topics(timeout=10)
    assert md.brokers, f"confluent-kafka via {address}: no brokers in metadata"

    def parsed():
        admin.poll(0.1)  # serves the log queue
        api, brokers, counts = [], {}, set()
        for line in list(handler.lines):
            m = _RDK_LINE.search(line)
            if not m or m.group(1) != address:
                continue
            msg = m.group(2)
            if "ApiVersionRe" in msg and ("Received" in msg or "failed" in msg):
                api.append(msg)
            b = _RDK_BROKER.match(msg)
            if b:
                brokers[int(b.group(3))] = b.group(2)
            c = _RDK_COUNT.match(msg)
            if c:
                counts.add(int(c.group(1)))
        return (api, brokers, counts) if api and counts else None

    try:
        return wait_until(parsed, timeout=10, message=f"librdkafka log of {address}'s answers")
    finally:
        logger.removeHandler(handler)


def assert_every_node_answers_for_both_clients(c: Cluster) -> None:
    expected = {i: c[i].bootstrap for i in c.ids}
    # A broker is ready once its own registration is applied; the others apply it a heartbeat
    # later. Wait (bounded) until every node's Metadata has all three; then check each client.
    wait_until(lambda: all(kp_node_view(c[i].bootstrap, i)[1] == expected for i in c.ids),
               timeout=10, interval=0.2, message="every node's Metadata to list all 3 brokers")
    for i in c.ids:
        api_versions, brokers = kp_node_view(c[i].bootstrap, i)
        for key in (0, 1, 3, 18):  # Produce, Fetch, Metadata, ApiVersions
            assert key in api_versions, f"kafka-python: node {i} ApiVersions lacks key {key}: {api_versions}"
        assert brokers == expected, f"kafka-python: node {i} Metadata lists {brokers}, expected {expected}"

        api_lines, brokers, counts = ck_node_view(c[i].bootstrap)
        assert all(line.startswith("Received ApiVersionResponse") for line in api_lines), (
            f"confluent-kafka: node {i} ApiVersions: {api_lines}")
        assert brokers == expected and counts == {3}, (
            f"confluent-kafka: node {i} Metadata lists {brokers} (counts {counts}), expected {expected}")


# ---------------------------------------------------------------------------
# 1. formation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "late"),
    [
        pytest.param([1, 2, 3], None, id="order-1-2-3"),
        pytest.param([3, 2, 1], None, id="order-3-2-1"),
        pytest.param([2, 3], 1, id="node1-after-2-3-ready"),
    ],
)
def test_cluster_forms_in_any_start_order_and_every_node_answers_both_clients(
        cluster, topic_name, first, late):
    c = cluster
    c.start(first)

    if late is not None:
        assert not c[late].is_running()
        t0 = time.monotonic()
        c.create_topic(topic_name, 2, replication_factor=3)
        print(f"\nnode {late} absent: partitions of a new topic had leaders after "
              f"{time.monotonic() - t0:.1f} s")
        msgs = make_messages(60, 2, "absent")
        acked = ck_produce(c.bootstrap(), topic_name, msgs, **PRODUCER_CONF)
        assert_read_matches(msgs, kp_read_all(c.bootstrap(), topic_name, 2, timeout=60), acked)

        c.launch(late)
        c[late].wait_ready()

    assert_every_node_answers_for_both_clients(c)


# ---------------------------------------------------------------------------
# 2. leader kill -9 under continuous acks=all produce
# ---------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_leader_kill9_during_acks_all_produce_loses_no_acknowledged_message(cluster, topic_name):
    c = cluster.start()
    leader = c.create_topic(topic_name, 1)[0]

    prod = ContinuousProducer(c.bootstrap(), topic_name, 1, "fo",
                              **{"message.timeout.ms": 90000, "enable.idempotence": True})
    prod.start()
    try:
        wait_until(lambda: prod.acked_count() >= 300 or prod.exc, timeout=PROGRESS_TIMEOUT_S,
                   message="300 acks before the kill")
        t_kill = time.monotonic()
        c[leader].kill9()
        acked_before_kill = prod.acked_count()

        def acked_after_kill() -> list[float]:
            with prod.lock:
                return [t for v, (_, _, t) in prod.acked.items() if prod.sent_at[v] > t_kill]

        wait_until(lambda: len(acked_after_kill()) >= 300 or prod.exc, timeout=PROGRESS_TIMEOUT_S,
                   message="300 acks of messages sent after the kill")
    finally:
        prod.stop()

    post_kill = acked_after_kill()
    assert acked_before_kill > 0 and len(post_kill) > 0
    failover_s = min(post_kill) - t_kill
    print(f"\nfailover: kill -9 of leader node {leader} -> first acks=all delivery of a message "
          f"sent after the kill: {failover_s * 1000:.0f} ms")

    new_leader = c.wait_leader(topic_name, 0, exclude=(leader,))
    read = read_values(c[new_leader].bootstrap, topic_name, 1)
    missing = prod.acked_values() - set(read)
    duplicates = len(read) - len(set(read))
    print(f"acked {len(prod.acked)} ({acked_before_kill} before the kill), failed deliveries "
          f"{len(prod.failed)}, read {len(read)}, duplicates {duplicates}, new leader {new_leader}")
    assert not missing, f"{len(missing)} acknowledged values missing, e.g. {sorted(missing)[:5]}"
    assert duplicates == 0, f"{duplicates} duplicates from an idempotent producer"
    assert failover_s < FAILOVER_MAX_S, f"failover took {failover_s:.1f} s"


# ---------------------------------------------------------------------------
# 3. follower kill -9 and rejoin: identical segment files
# ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_follower_kill9_rejoins_and_catches_up_to_byte_identical_segments(cluster, topic_name):
    c = cluster.start()
    leader = c.create_topic(topic_name, 1)[0]
    follower = next(i for i in c.ids if i != leader)

    before = make_messages(300, 1, "before")
    ck_produce(c.bootstrap(), topic_name, before, **PRODUCER_CONF)

    c[follower].kill9()
    follower_bytes_at_kill = sum(c.segment_sizes(follower, topic_name, 0).values())
    during = make_messages(300, 1, "during")
    ck_produce(c.bootstrap(), topic_name, during, **PRODUCER_CONF)
    leader_bytes = sum(c.segment_sizes(leader, topic_name, 0).values())
    assert leader_bytes > follower_bytes_at_kill > 0, (
        f"the follower must miss data while down: leader {leader_bytes} B, "
        f"follower at kill {follower_bytes_at_kill} B")

    c[follower].start()
    after = make_messages(100, 1, "after")
    ck_produce(c.bootstrap(), topic_name, after, **PRODUCER_CONF)

    read = read_values(c.bootstrap(), topic_name, 1)
    sent = {m.value.decode() for m in before + during + after}
    assert sent <= set(read), f"{len(sent - set(read))} acknowledged values missing"

    # Caught up: every replica's segment files have the leader's names and sizes.
    def caught_up():
        sizes = {i: c.segment_sizes(i, topic_name, 0) for i in c.ids}
        return sizes if all(s == sizes[leader] for s in sizes.values()) else None

    try:
        wait_until(caught_up, timeout=PROGRESS_TIMEOUT_S, interval=0.1, message="replicas to catch up")
    except TimeoutError as e:
        raise AssertionError(
            f"{e}: {({i: c.segment_sizes(i, topic_name, 0) for i in c.ids})}") from None

    for i in c.ids:
        assert c[i].stop(signal.SIGTERM) == 0, f"node {i} did not stop cleanly"
    files = {i: c.segment_files(i, topic_name, 0) for i in c.ids}
    assert files[leader] and all(files[leader].values()), "no segment data on the leader"
    for i in c.ids:
        assert sorted(files[i]) == sorted(files[leader]), (
            f"node {i} segment files {sorted(files[i])} != leader {leader}'s {sorted(files[leader])}")
        for name, data in files[leader].items():
            other = files[i][name]
            if other != data:
                first = next((k for k, (a, b) in enumerate(zip(other, data)) if a != b),
                             min(len(other), len(data)))
                raise AssertionError(
                    f"{name} differs between node {i} ({len(other)} B) and leader {leader} "
                    f"({len(data)} B) from byte {first}")


# ---------------------------------------------------------------------------
# 4. rolling restart under load
# ---------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_rolling_restart_under_produce_and_consume_loses_nothing(server_factory, topic_name):
    partitions = 3  # leaders spread over the nodes: every restart moves some leader
    # Look for partitions away from their preferred leader every second (Kafka: 300 s).
    c = Cluster(server_factory, size=3,
                extra_args=["--leader-imbalance-check-interval-seconds", "1"]).start()
    c.create_topic(topic_name, partitions)
    preferred = {p: replicas[0] for p, replicas in c.replica_sets(topic_name).items()}
    assert sorted(preferred.values()) == c.ids, f"preferred leaders not spread: {preferred}"
    bootstrap = c.bootstrap()  # all three; addresses survive restarts

    prod = ContinuousProducer(bootstrap, topic_name, partitions, "roll",
                              **{"message.timeout.ms": 120000})
    cons = ContinuousConsumer(bootstrap, topic_name, partitions)
    prod.start()
    cons.start()
    try:
        try:
            def progressed(what: str, a0: dict[int, int], r0: dict[int, int], n: int = 20):
                """Both clients got n more records on every partition than in a0/r0."""
                def cond():
                    if prod.exc or cons.exc:
                        return True
                    a, r = prod.acked_per_partition(), cons.per_partition()
                    return all(a[p] >= a0[p] + n and r[p] >= r0[p] + n for p in range(partitions))
                try:
                    wait_until(cond, timeout=PROGRESS_TIMEOUT_S, interval=0.1, message=what)
                except TimeoutError as e:
                    raise AssertionError(
                        f"{e}: acked {prod.acked_per_partition()} (from {a0}), consumed "
                        f"{cons.per_partition()} (from {r0})") from None

            zero = {p: 0 for p in range(partitions)}
            progressed("initial progress", zero, zero)
            for i in c.ids:
                before = (prod.acked_per_partition(), cons.per_partition())
                assert c[i].stop(signal.SIGTERM) == 0, f"node {i} did not stop cleanly"
                progressed(f"progress while node {i} is down", *before)
                before = (prod.acked_per_partition(), cons.per_partition())
                c[i].start()
                progressed(f"progress after node {i} restarted", *before)
            # The last restart left the partitions of node 3 with other leaders; each goes
            # back to its preferred replica once that is in sync, under the running load.
            t0 = time.monotonic()
            for p in range(partitions):
                c.wait_leader(topic_name, p, exclude=tuple(i for i in c.ids if i != preferred[p]),
                              timeout=PROGRESS_TIMEOUT_S)
            print(f"\nleaders back on their preferred replicas {preferred} "
                  f"{time.monotonic() - t0:.1f} s after the last restart was ready")
            before = (prod.acked_per_partition(), cons.per_partition())
            progressed("progress after leadership went back to the preferred replicas", *before)
        finally:
            prod.stop()
        acked = prod.acked_values()
        assert len(acked) > 0
        # the running consumer keeps going until it has seen every acknowledged value
        wait_until(lambda: acked <= cons.values() or cons.exc, timeout=PROGRESS_TIMEOUT_S,
                   message="the consumer to read every acknowledged value")
    finally:
        cons.stop()

    read = read_values(bootstrap, topic_name, partitions)
    missing = acked - set(read)
    print(f"\nrolling restart: acked {len(acked)}, failed deliveries {len(prod.failed)}, "
          f"read {len(read)}, duplicates {len(read) - len(set(read))}, "
          f"consumer records {len(cons.records)}, consumer errors {len(cons.errors)}")
    assert not missing, f"{len(missing)} acknowledged values missing, e.g. {sorted(missing)[:5]}"


# ---------------------------------------------------------------------------
# 5. a leader without its majority acknowledges nothing
# ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_leader_cut_off_from_majority_acknowledges_no_acks_all_write(cluster, topic_name):
    c = cluster.start()
    leader = c.create_topic(topic_name, 1)[0]
    followers = [i for i in c.ids if i != leader]

    before = make_messages(20, 1, "before")
    ck_produce(c.bootstrap(), topic_name, before, **PRODUCER_CONF)

    reports: dict[str, str | None] = {}

    def report(err, msg):
        reports[msg.value().decode()] = None if err is None else str(err)

    cut_off = [f"cut-off-{i:03d}" for i in range(20)]
    with c.paused(followers):
        producer = ck_producer(c[leader].bootstrap, **{
            **PRODUCER_CONF, "message.timeout.ms": 3000, "request.timeout.ms": 3000})
        for v in cut_off:
            producer.produce(topic_name, value=v.encode(), partition=0, on_delivery=report)
        remaining = producer.flush(20)
        assert remaining == 0, f"{remaining} messages without a delivery report"
    delivered = [v for v, err in reports.items() if err is None]
    assert sorted(reports) == sorted(cut_off), "every message must get a delivery report"
    assert not delivered, (
        f"leader {leader} acknowledged {len(delivered)} acks=all writes while both followers "
        f"{followers} were stopped, e.g. {delivered[:3]}")
    print(f"\ncut-off leader {leader}: delivery errors {sorted(set(reports.values()))}")

    # Majority back: writes are acknowledged again, and nothing acknowledged is lost.
    c.wait_leader(topic_name, 0)
    after = make_messages(20, 1, "after")
    ck_produce(c.bootstrap(), topic_name, after, **PRODUCER_CONF)
    read = set(read_values(c.bootstrap(), topic_name, 1))
    acked = {m.value.decode() for m in before + after}
    assert acked <= read, f"{len(acked - read)} acknowledged values missing"


@pytest.mark.timeout(120)
def test_a_leader_cut_off_from_its_majority_stops_presenting_itself_as_leader(cluster, topic_name):
    """Check-quorum: a Raft leader whose followers stopped answering may already be replaced
    on the other side, so it must stop naming itself the partition's leader (Metadata
    LEADER_NOT_AVAILABLE, Produce NOT_LEADER_OR_FOLLOWER) instead of drawing every client that
    asks it into requests that time out. With its majority back a leader is named again."""
    c = cluster.start()
    leader = c.create_topic(topic_name, 1)[0]
    followers = [i for i in c.ids if i != leader]
    assert c.leader_seen_by(leader, topic_name, 0) == leader
    with c.paused(followers):
        t0 = time.monotonic()
        wait_until(lambda: c.leader_seen_by(leader, topic_name, 0) == -1, timeout=10,
                   message=f"node {leader}, cut off, to stop naming itself leader")
        print(f"\ncut-off leader {leader} stopped naming itself after {time.monotonic() - t0:.1f} s")
        assert produce_error_code(c[leader].bootstrap, topic_name, 0) == \
            ck.KafkaError.NOT_LEADER_FOR_PARTITION
    new_leader = c.wait_leader(topic_name, 0)
    ck_produce(c.bootstrap(), topic_name, make_messages(5, 1, "after"), **PRODUCER_CONF)
    print(f"leader after the cut: {new_leader}")


# ---------------------------------------------------------------------------
# 6. concurrent FindCoordinator requests while __consumer_offsets is created
# ---------------------------------------------------------------------------


def test_concurrent_find_coordinator_requests_do_not_hang_a_node(cluster):
    """A consumer with a group.id sends FindCoordinator (librdkafka does, even with assign(),
    from two connections at once). More concurrent requests than the node has runtime workers
    must all be answered (coordinator or COORDINATOR_NOT_AVAILABLE), and the node keep serving."""
    c = cluster.start()
    target = c[1]
    n = (os.cpu_count() or 2) + 3  # more than the server's tokio worker threads
    socks = [connect(target.bootstrap) for _ in range(n)]
    answered = 0
    try:
        for k, s in enumerate(socks):
            s.sendall(find_coordinator_v2(f"group-{k}", correlation_id=k + 1))
        deadline = time.monotonic() + 10  # normally all are answered in well under a second
        for s in socks:
            try:
                recv_frame(s, timeout=max(0.1, deadline - time.monotonic()))
                answered += 1
            except (TimeoutError, ConnectionError):
                pass
    finally:
        for s in socks:
            s.close()
    assert answered == n, f"{n - answered} of {n} concurrent FindCoordinator requests unanswered after 10 s"
    assert_serving(target.bootstrap)


# ---------------------------------------------------------------------------
# 7. consumer group coordinator failover keeps committed offsets
# ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_group_coordinator_kill9_keeps_committed_offsets(cluster, topic_name):
    c = cluster.start()
    c.create_topic(topic_name, 1)
    msgs = make_messages(50, 1, "grp")
    acked = ck_produce(c.bootstrap(), topic_name, msgs, **PRODUCER_CONF)
    assert len(acked) == 50
    group = f"{topic_name}-group"

    first = ck_consumer(c.bootstrap(), **{"group.id": group, "session.timeout.ms": 6000})
    try:
        first.subscribe([topic_name])
        got = []
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while len(got) < 30 and time.monotonic() < deadline:
            m = first.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m)
        assert len(got) >= 30, f"the group consumer read {len(got)} of 30"
        commit_at = ck.TopicPartition(topic_name, 0, got[29].offset() + 1)
        first.commit(offsets=[commit_at], asynchronous=False)
        coordinator = coordinator_id(c[1].bootstrap, group)
    finally:
        first.close()

    c[coordinator].kill9()
    survivors = [i for i in c.ids if i != coordinator]
    second = ck_consumer(c.bootstrap(survivors), **{"group.id": group})
    try:
        second.subscribe([topic_name])
        m = None
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while time.monotonic() < deadline:
            m = second.poll(0.5)
            if m is not None and m.error() is None:
                break
        assert m is not None and m.error() is None, "the group made no progress after failover"
        assert m.offset() == commit_at.offset, (
            f"resumed at offset {m.offset()}, committed {commit_at.offset}")
        committed = second.committed([ck.TopicPartition(topic_name, 0)], timeout=15)
        assert committed[0].offset == commit_at.offset
    finally:
        second.close()


COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR = 15, 16


def offset_commit_v2(bootstrap: str, group: str, topic: str, offset: int,
                     timeout: float = 10.0) -> int:
    """OffsetCommit v2 of a simple consumer (generation -1) for partition 0; its error code."""
    import struct

    from kafka_wire import frame, kstring, request_header

    body = (request_header(8, 2, correlation_id=11) + kstring(group) + struct.pack(">i", -1)
            + kstring("") + struct.pack(">q", -1) + struct.pack(">i", 1) + kstring(topic)
            + struct.pack(">iiq", 1, 0, offset) + kstring(None))
    with connect(bootstrap) as s:
        s.sendall(frame(body))
        resp = recv_frame(s, timeout=timeout)
    # correlation id, [topics]: name, [partitions]: partition, error code
    (name_len,) = struct.unpack_from(">h", resp, 8)
    (error,) = struct.unpack_from(">h", resp, 10 + name_len + 4 + 4)
    return error


def test_a_group_coordinator_whose_offsets_partition_stalls_answers_in_bounded_time(
        cluster, topic_name):
    """Kafka's offsets.commit.timeout.ms: the coordinator waits at most 5 s for its records to
    be stored, then answers COORDINATOR_NOT_AVAILABLE. Here its followers stop just before an
    offset commit, so the commit's Raft entry cannot be committed; the commit must still be
    answered (it used to wait, holding every group of the node, until the followers came back)
    and the coordinator must work again once they do."""
    c = cluster.start()
    c.create_topic(topic_name, 1)
    group = f"{topic_name}-stall"

    def coordinator():
        try:
            return coordinator_id(c[1].bootstrap, group)
        except AssertionError:  # COORDINATOR_NOT_AVAILABLE while __consumer_offsets is created
            return None

    coordinator = wait_until(coordinator, timeout=PROGRESS_TIMEOUT_S, interval=0.2,
                             message="a coordinator for the group")
    assert offset_commit_v2(c[coordinator].bootstrap, group, topic_name, 5) == 0
    others = [i for i in c.ids if i != coordinator]
    with c.paused(others):
        t0 = time.monotonic()
        error = offset_commit_v2(c[coordinator].bootstrap, group, topic_name, 10, timeout=20)
        took = time.monotonic() - t0
    print(f"\ncommit with the followers stopped: error {error} after {took:.1f} s")
    assert error in (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR)
    # The stalled commit's entry may now be committed too; the coordinator (whichever node it
    # is now) takes new commits.
    wait_until(lambda: any(offset_commit_v2(c[i].bootstrap, group, topic_name, 20) == 0
                           for i in c.ids),
               timeout=PROGRESS_TIMEOUT_S, interval=0.2,
               message="the group's coordinator to take commits again")


def init_producer_id_v0(bootstrap: str, transactional_id: str, timeout: float = 10.0) -> int:
    """InitProducerId v0 for a transactional id; its error code."""
    import struct

    from kafka_wire import frame, kstring, request_header

    body = request_header(22, 0, correlation_id=12) + kstring(transactional_id) + struct.pack(">i", 60000)
    with connect(bootstrap) as s:
        s.sendall(frame(body))
        resp = recv_frame(s, timeout=timeout)
    # correlation id, throttle time, error code, producer id, producer epoch
    (error,) = struct.unpack_from(">h", resp, 8)
    return error


def test_a_transaction_coordinator_whose_state_partition_stalls_answers_in_bounded_time(cluster):
    """As for groups: the transaction coordinator waits at most 5 s for its record to be stored
    in __transaction_state, then answers COORDINATOR_NOT_AVAILABLE (it used to wait, holding
    every transactional id of the node, until the followers came back)."""
    c = cluster.start()
    tid = "stall-txn"

    def coordinator():
        try:
            return coordinator_id(c[1].bootstrap, tid, key_type=1)
        except AssertionError:  # COORDINATOR_NOT_AVAILABLE while __transaction_state is created
            return None

    node = wait_until(coordinator, timeout=PROGRESS_TIMEOUT_S, interval=0.2,
                      message="a transaction coordinator")
    wait_until(lambda: init_producer_id_v0(c[node].bootstrap, tid) == 0,
               timeout=PROGRESS_TIMEOUT_S, interval=0.2, message="a first InitProducerId")
    others = [i for i in c.ids if i != node]
    with c.paused(others):
        t0 = time.monotonic()
        error = init_producer_id_v0(c[node].bootstrap, tid, timeout=20)
        took = time.monotonic() - t0
    print(f"\nInitProducerId with the followers stopped: error {error} after {took:.1f} s")
    assert error in (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR)
    wait_until(lambda: any(init_producer_id_v0(c[i].bootstrap, tid) == 0 for i in c.ids),
               timeout=PROGRESS_TIMEOUT_S, interval=0.2,
               message="the transaction coordinator to initialise producers again")


# ---------------------------------------------------------------------------
# 8. topics with fewer replicas than nodes
# ---------------------------------------------------------------------------


def ck_partition_view(address: str, topic: str) -> dict[int, tuple[int, list[int], list[int], str]]:
    """confluent-kafka, bootstrapped at this node only: {partition: (leader, replicas, isr,
    error)} from this node's Metadata answer."""
    admin = AdminClient({"bootstrap.servers": address, "socket.timeout.ms": 5000})
    md = admin.list_topics(topic=topic, timeout=5)
    t = md.topics[topic]
    return {p.id: (p.leader, sorted(p.replicas), sorted(p.isrs), str(p.error))
            for p in t.partitions.values()}


@pytest.mark.timeout(180)
def test_topics_with_fewer_replicas_than_nodes_are_served_by_every_node(cluster, topic_name):
    """A topic of replication factor 1 or 2 on three nodes: each partition lives on one or two
    of them, yet every node's Metadata lists every partition with its leader (a replica), and
    clients bootstrapped at any node produce to and read from all partitions. A node without
    a replica of a partition answers NOT_LEADER_OR_FOLLOWER to a produce for it."""
    c = cluster.start()
    partitions = 6
    for rf in (1, 2):
        topic = f"{topic_name}-rf{rf}"
        c.create_topic(topic, partitions, replication_factor=rf)

        def every_node_agrees():
            views = {i: ck_partition_view(c[i].bootstrap, topic) for i in c.ids}
            for view in views.values():
                if sorted(view) != list(range(partitions)):
                    return None
                for leader, replicas, isr, error in view.values():
                    if error != "None" or len(replicas) != rf or leader not in replicas:
                        return None
            return views if all(v == views[1] for v in views.values()) else None

        views = wait_until(every_node_agrees, timeout=30, interval=0.2,
                           message=f"every node to list all partitions of the RF {rf} topic")
        hosts = {p: set(replicas) for p, (_, replicas, _, _) in views[1].items()}
        assert any(len(h) < 3 for h in hosts.values()), hosts
        for node in c.ids:
            # Bootstrapped at one node only: the client must learn the other leaders from it.
            msgs = make_messages(60, partitions, f"rf{rf}-via{node}")
            ck_produce(c[node].bootstrap, topic, msgs, acks="all")
        log = kp_read_all(c.bootstrap(), topic, partitions, expected_total=3 * 60)
        values = sorted(v for recs in log.values() for (_, _, v) in recs)
        assert len(values) == 180 and len(set(values)) == 180, f"read {len(values)} values"

    # A produce sent to a node that holds no replica of the partition.
    topic = f"{topic_name}-rf1"
    view = ck_partition_view(c[1].bootstrap, topic)
    p, (leader, replicas, _, _) = next((p, v) for p, v in sorted(view.items()) if 1 not in v[1])
    assert produce_error_code(c[1].bootstrap, topic, p) == 6, "NOT_LEADER_OR_FOLLOWER expected"


def produce_error_code(bootstrap: str, topic: str, partition: int) -> int:
    """The error code of one acks=all Produce (v9) of one record to `partition`, sent to the
    node at `bootstrap` on a raw connection."""
    from kafka.protocol.producer import ProduceRequest, ProduceResponse
    from kafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 20)
    b.append(0, timestamp=int(time.time() * 1000), key=None, value=b"misdirected", headers=[])
    data = ProduceRequest.TopicProduceData
    req = ProduceRequest(transactional_id=None, acks=-1, timeout_ms=10000, topic_data=[
        data(name=topic, partition_data=[
            data.PartitionProduceData(index=partition, records=bytes(b.build()))])])
    req.with_header(correlation_id=11, client_id="chronik-cluster-test")
    with connect(bootstrap) as sock:
        sock.sendall(req.encode(version=9, header=True, framed=True))
        resp = ProduceResponse.decode(recv_frame(sock), version=9, header=True)
    return resp.responses[0].partition_responses[0].error_code


# ---------------------------------------------------------------------------
# 9. a leader whose disk fails
# ---------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_leader_whose_fsync_fails_stops_and_loses_nothing(server_factory, topic_name):
    """The partition leader's fdatasync starts failing (test fault injection). It acknowledges
    nothing it could not make durable, and once a Raft group of it stops on the error the node
    shuts down with an error, as Kafka stops a broker whose log directories have all failed.
    Another replica takes over; a new idempotent producer gets its producer id and writes; every
    acknowledged value is read back exactly once."""
    import urllib.request

    c = Cluster(server_factory, size=3, extra_args=["--test-fault-injection", "true"]).start()
    old = c.create_topic(topic_name, 1)[0]
    before = make_messages(50, 1, "before")
    ck_produce(c.bootstrap(), topic_name, before, acks="all", **{"enable.idempotence": True})

    req = urllib.request.Request(c[old].url("/test/faults?fail_syncs=true"), method="PUT")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    t0 = time.monotonic()
    after = make_messages(50, 1, "after")
    ck_produce(c.bootstrap(), topic_name, after, acks="all",
               **{"enable.idempotence": True, "message.timeout.ms": 60000})
    took = time.monotonic() - t0
    rc = c[old].wait_exit(timeout=PROGRESS_TIMEOUT_S)
    assert rc != 0, f"node {old} exited {rc} after its storage failed"
    new = c.wait_leader(topic_name, 0, exclude=(old,), timeout=PROGRESS_TIMEOUT_S)
    print(f"\nnode {old}'s fsync failed and it stopped (exit {rc}); node {new} leads; the "
          f"writes after the fault were all acknowledged within {took:.1f} s")

    values = read_values(c.bootstrap(), topic_name, 1)
    sent = [m.value.decode() for m in before + after]
    assert sorted(values) == sorted(sent), (
        f"read {len(values)} values ({len(set(values))} distinct), sent {len(sent)}")


# ---------------------------------------------------------------------------
# 10. transactions across nodes
# ---------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_transactions_span_partitions_led_by_every_node_and_survive_coordinator_kill9(
        cluster, topic_name):
    """A transaction writes to three partitions whose leaders are spread over the nodes, so its
    markers go to other nodes; commits are read by read_committed consumers and aborts never
    are. Then the transaction coordinator is killed with a transaction open: a new producer with
    the same transactional id, through the survivors, aborts it (the new coordinator loaded the
    state from the replicated __transaction_state) and commits its own."""
    from test_transactions import (TXN_OP_TIMEOUT, per_partition, plain_produce, produce_txn,
                                   read_through_sentinels, sentinels, spread, txn_producer)

    partitions = 3
    c = cluster.start()
    c.create_topic(topic_name, partitions)
    leaders = {c.wait_leader(topic_name, p) for p in range(partitions)}
    assert len(leaders) > 1, f"the partitions' leaders are all on one node: {leaders}"
    txn_id = f"txn-{topic_name}"
    producer = txn_producer(c.bootstrap(), txn_id)
    producer.init_transactions(TXN_OP_TIMEOUT)
    committed = spread("committed", 9, partitions)
    producer.begin_transaction()
    produce_txn(producer, topic_name, committed)
    producer.commit_transaction(TXN_OP_TIMEOUT)
    aborted = spread("aborted", 9, partitions)
    producer.begin_transaction()
    produce_txn(producer, topic_name, aborted)
    producer.abort_transaction(TXN_OP_TIMEOUT)
    left_open = spread("left-open", 9, partitions)
    producer.begin_transaction()
    produce_txn(producer, topic_name, left_open)
    coordinator = coordinator_id(c[1].bootstrap, txn_id, key_type=1)

    c[coordinator].kill9()
    survivors = [i for i in c.ids if i != coordinator]
    successor = txn_producer(c.bootstrap(survivors), txn_id)
    try:
        successor.init_transactions(PROGRESS_TIMEOUT_S)
        after = spread("after-failover", 9, partitions)
        successor.begin_transaction()
        produce_txn(successor, topic_name, after)
        successor.commit_transaction(PROGRESS_TIMEOUT_S)
    finally:
        successor.flush(1)
    marks = sentinels("end", partitions)
    plain_produce(c.bootstrap(survivors), topic_name, marks)

    seen = read_through_sentinels(c.bootstrap(survivors), topic_name, partitions,
                                  "read_committed", marks, timeout=PROGRESS_TIMEOUT_S)
    assert seen == per_partition(committed, after, marks, partitions=partitions), (
        f"leaders {leaders}, coordinator {coordinator}")
    everything = read_through_sentinels(c.bootstrap(survivors), topic_name, partitions,
                                        "read_uncommitted", marks, timeout=PROGRESS_TIMEOUT_S)
    assert everything == per_partition(committed, aborted, left_open, after, marks,
                                       partitions=partitions)


@pytest.mark.timeout(180)
def test_a_replica_that_lost_committed_entries_helps_elect_no_leader_without_them(
        cluster, topic_name):
    """Disk corruption on one node must not lose acknowledged data. Node B is stopped; records
    "second" are then committed by A and C only. A and C stop; C's copy of the partition is cut
    (its segment file truncated into the "first" records: what a corruption found at start-up
    does to the log). B and C start: together they are a majority, and without C's knowledge
    that it lost committed entries, C would vote for B (B's log is longer than C's cut one) and
    B would lead without "second". C remembers its commit point and refuses: no leader. Once A
    returns, A leads, C is repaired, and every acknowledged record is there."""
    c = cluster.start()
    a = c.create_topic(topic_name, 1)[0]
    b, cc = [i for i in c.ids if i != a]
    first = make_messages(200, 1, "first")
    ck_produce(c.bootstrap(), topic_name, first, acks="all")
    assert c[b].stop() == 0
    second = make_messages(200, 1, "second")
    ck_produce(c.bootstrap([a, cc]), topic_name, second, acks="all")
    assert c[cc].stop() == 0
    assert c[a].stop() == 0

    from test_disk_faults import run_check
    assert run_check(c[cc]).returncode == 0, "a clean cluster data dir passes the check"
    seg = c.partition_dir(cc, topic_name, 0) / "00000000000000000000.log"
    size = seg.stat().st_size
    os.truncate(seg, size // 4)          # inside the "first" records
    check = run_check(c[cc])
    assert check.returncode == 1 and str(seg) in check.stdout, check.stdout + check.stderr

    c.launch(b)
    c.launch(cc)
    # With the bug, B or C is elected within about 2 s; give it far more than that.
    def leader_named() -> bool:
        for i in (b, cc):
            try:
                if c.leader_seen_by(i, topic_name, 0) in (b, cc):
                    return True
            except ck.KafkaException:
                pass   # no Metadata answer yet
        return False

    with pytest.raises(TimeoutError):
        wait_until(leader_named, timeout=12,
                   message="a leader of the partition elected by B and C alone")
    assert "lost Raft entries it had" in c[cc].log_text()

    c.launch(a)
    leader = c.wait_leader(topic_name, 0)
    read = read_values(c[leader].bootstrap, topic_name, 1)
    expected = [m.value.decode() for m in first + second]
    assert read == expected, (f"leader {leader}: read {len(read)} records, "
                              f"{len(set(expected) - set(read))} acknowledged ones missing")


@pytest.mark.timeout(180)
def test_a_transaction_open_when_every_node_is_killed_can_be_aborted_after_the_restart(
        cluster, topic_name):
    """kill -9 of every node at once with a transaction open, after enough transactions that
    its __transaction_state partition holds hundreds of records; then every node restarts. The
    coordinator must have loaded the whole replicated state before answering (a leader resuming
    its term after a restart applies the committed log from the start again): the producer's
    abort succeeds (it was answered INVALID_TXN_STATE when the coordinator loaded a prefix), the
    open transaction stays invisible to read_committed, and every committed one stays visible."""
    from test_transactions import (TXN_OP_TIMEOUT, per_partition, plain_produce, produce_txn,
                                   read_through_sentinels, sentinels, spread, txn_producer)

    partitions = 3
    c = cluster.start()
    c.create_topic(topic_name, partitions)
    txn_id = f"txn-{topic_name}"
    producer = txn_producer(c.bootstrap(), txn_id)
    producer.init_transactions(TXN_OP_TIMEOUT)
    committed: list = []
    for i in range(60):   # 3+ __transaction_state records each
        values = spread(f"committed-{i}", 3, partitions)
        producer.begin_transaction()
        produce_txn(producer, topic_name, values)
        producer.commit_transaction(TXN_OP_TIMEOUT)
        committed += values
    left_open = spread("left-open", 9, partitions)
    producer.begin_transaction()
    produce_txn(producer, topic_name, left_open)

    for i in c.ids:
        c[i].kill9()
    c.start()
    producer.abort_transaction(PROGRESS_TIMEOUT_S)
    marks = sentinels("end", partitions)
    plain_produce(c.bootstrap(), topic_name, marks)
    seen = read_through_sentinels(c.bootstrap(), topic_name, partitions, "read_committed", marks,
                                  timeout=PROGRESS_TIMEOUT_S)
    assert seen == per_partition(committed, marks, partitions=partitions)



@pytest.mark.timeout(120)
def test_a_node_restarted_alone_never_calls_an_existing_topic_unknown(cluster, topic_name):
    """Every node killed, one restarted alone: its metadata image is rebuilt from the controller
    log only once a controller leader exists, so until then a topic missing from it may exist.
    It must say so with retriable errors (Metadata LEADER_NOT_AVAILABLE at once, Produce
    NOT_LEADER_OR_FOLLOWER) rather than UNKNOWN_TOPIC_OR_PARTITION, which makes librdkafka fail
    sends to an existing topic locally; and it must not report ready. Once a majority is back it
    serves the topic with everything acknowledged before."""
    c = cluster.start()
    c.create_topic(topic_name, 3)
    msgs = make_messages(30, 3, "before")
    acked = ck_produce(c.bootstrap(), topic_name, msgs, **PRODUCER_CONF)
    for i in c.ids:
        c[i].kill9()

    c.launch(1)
    admin = AdminClient({"bootstrap.servers": c[1].bootstrap, "socket.timeout.ms": 5000})
    t0 = time.monotonic()
    md = admin.list_topics(topic=topic_name, timeout=5)
    assert time.monotonic() - t0 < 4.0, "Metadata must be answered at once, not after a wait"
    t = md.topics[topic_name]
    assert t.error is not None and t.error.code() == ck.KafkaError.LEADER_NOT_AVAILABLE, t.error
    assert produce_error_code(c[1].bootstrap, topic_name, 0) == ck.KafkaError.NOT_LEADER_FOR_PARTITION
    status, _ = http_get(c[1].url("/health/ready"), timeout=2.0)
    assert status != 200, "a node that knows no controller leader is not ready"

    c.launch(2)
    c[1].wait_ready()
    c[2].wait_ready()
    md = admin.list_topics(topic=topic_name, timeout=10)
    assert md.topics[topic_name].error is None
    assert sorted(md.topics[topic_name].partitions) == [0, 1, 2]
    assert_read_matches(msgs, kp_read_all(c.bootstrap(), topic_name, 3, timeout=60), acked)

@pytest.mark.timeout(120)
def test_a_late_batch_is_refused_by_a_leader_whose_transaction_coordinator_is_elsewhere(
        cluster, topic_name):
    """KIP-890 part 1 across nodes: the leader of a partition asks the transaction's coordinator,
    on another node, whether a transactional batch that would open a transaction there belongs
    to an open one. A late batch of a committed transaction gets INVALID_TXN_STATE instead of
    opening a transaction nobody ends (which would hold the last stable offset back)."""
    from kafka.admin import KafkaAdminClient

    from test_transactions import (TXN_OP_TIMEOUT, Reader, plain_produce,
                                   produce_raw_transactional_batch, produce_txn, sentinels,
                                   txn_producer)

    partitions = 3
    c = cluster.start()
    c.create_topic(topic_name, partitions)
    leaders = {p: c.wait_leader(topic_name, p) for p in range(partitions)}
    txn_id = f"txn-late-{topic_name}"
    producer = txn_producer(c.bootstrap(), txn_id)
    producer.init_transactions(TXN_OP_TIMEOUT)
    coordinator = coordinator_id(c[1].bootstrap, txn_id, key_type=1)
    elsewhere = [p for p, leader in leaders.items() if leader != coordinator]
    assert elsewhere, f"every partition is led by the coordinator {coordinator}: {leaders}"
    partition = elsewhere[0]
    producer.begin_transaction()
    produce_txn(producer, topic_name, [(partition, b"in-time")])
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap())
    try:
        open_txn = admin.describe_transactions([txn_id])[txn_id]
    finally:
        admin.close()
    ids = (open_txn.producer_id, open_txn.producer_epoch)
    producer.commit_transaction(TXN_OP_TIMEOUT)

    # The producer's next sequence number, sent to the partition's leader, so only the
    # coordinator's answer can refuse it.
    leader = c[leaders[partition]]
    error = produce_raw_transactional_batch(leader.bootstrap, txn_id, topic_name, partition, ids, 1,
                                            b"late")
    assert error == 48, (f"a late transactional batch got error {error}, expected INVALID_TXN_STATE "
                         f"(48); leader {leaders[partition]}, coordinator {coordinator}")

    marks = sentinels("late-end", partitions)
    plain_produce(c.bootstrap(), topic_name, marks)
    reader = Reader(c.bootstrap(), topic_name, partitions, "read_committed")
    try:
        reader.read_until_values({v for _, v in marks})
        assert reader.values()[partition] == [b"in-time", marks[partition][1]]
        uncommitted = Reader(c.bootstrap(), topic_name, partitions, "read_uncommitted")
        try:
            assert reader.end_offsets() == uncommitted.end_offsets(), "the last stable offset is held back"
        finally:
            uncommitted.close()
    finally:
        reader.close()


def test_replica_assignments_given_by_the_client_are_kept_in_order(cluster, topic_name):
    """CreateTopics and CreatePartitions with explicit replica sets (kafka-topics
    --replica-assignment, librdkafka's set_replica_assignment): every partition gets exactly the
    brokers given, in that order (the first is its preferred leader); an unknown broker, a
    broker twice and sets of different sizes are INVALID_REPLICA_ASSIGNMENT."""
    from confluent_kafka.admin import NewPartitions, NewTopic

    c = cluster.start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap(), "socket.timeout.ms": 10000})
    sets = [[1, 2], [3, 1], [2, 3]]
    admin.create_topics([NewTopic(topic_name, len(sets), replica_assignment=sets)],
                        operation_timeout=15)[topic_name].result(timeout=30)
    admin.create_partitions([NewPartitions(topic_name, 4, replica_assignment=[[3, 2]])],
                            operation_timeout=15)[topic_name].result(timeout=30)

    def replicas() -> list[list[int]]:
        md = admin.list_topics(topic_name, timeout=10).topics[topic_name]
        return [list(md.partitions[p].replicas) for p in sorted(md.partitions)]

    wait_until(lambda: replicas() == sets + [[3, 2]], timeout=PROGRESS_TIMEOUT_S,
               message=f"replica sets {sets + [[3, 2]]}")
    for bad in ([[1, 4]], [[1, 1]], [[1, 2], [3]]):
        f = admin.create_topics([NewTopic(f"{topic_name}-bad", len(bad), replica_assignment=bad)],
                                operation_timeout=15)[f"{topic_name}-bad"]
        with pytest.raises(ck.KafkaException) as refused:
            f.result(timeout=30)
        assert refused.value.args[0].code() == ck.KafkaError.INVALID_REPLICA_ASSIGNMENT, (bad, refused.value)


@pytest.mark.timeout(120)
def test_delete_records_is_replicated_and_holds_after_the_leader_is_killed(cluster, topic_name):
    """DeleteRecords in a cluster: the leader proposes the new log start to the partition's
    Raft group and answers once it is committed; every replica moves its log start, so after
    the leader is killed the new leader serves from the same low watermark, and a consumer
    from the beginning reads only what was kept."""
    from confluent_kafka import TopicPartition

    c = cluster.start()
    leader = c.create_topic(topic_name, 1)[0]
    msgs = make_messages(10, 1, "dr")
    ck_produce(c.bootstrap(), topic_name, msgs, **PRODUCER_CONF)
    admin = AdminClient({"bootstrap.servers": c.bootstrap(), "socket.timeout.ms": 10000})
    done = admin.delete_records([TopicPartition(topic_name, 0, 6)], operation_timeout=15)
    result = next(iter(done.values())).result(timeout=30)
    assert result.low_watermark == 6
    too_far = admin.delete_records([TopicPartition(topic_name, 0, 11)], operation_timeout=15)
    with pytest.raises(ck.KafkaException) as refused:
        next(iter(too_far.values())).result(timeout=30)
    assert refused.value.args[0].code() == ck.KafkaError.OFFSET_OUT_OF_RANGE
    c[leader].kill9()
    survivors = [i for i in c.ids if i != leader]
    c.wait_leader(topic_name, 0, exclude=(leader,))
    consumer = ck_consumer(c.bootstrap(survivors), **{"group.id": f"g-{topic_name}",
                                                       "auto.offset.reset": "earliest"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)
        assert (low, high) == (6, 10)
    finally:
        consumer.close()
    read = read_values(c.bootstrap(survivors), topic_name, 1)
    assert read == [m.value.decode() for m in msgs[6:]]

    # The killed leader, restarted, holds the same log start (from its Raft log).
    c[leader].start()

    def log_start_on_restarted() -> int | None:
        status, body = http_get(c[leader].url("/cluster"))
        if status != 200:
            return None
        parts = json.loads(body)["partitions"]
        return next((p["log_start_offset"] for p in parts if p["topic"] == topic_name), None)

    wait_until(lambda: log_start_on_restarted() == 6, timeout=PROGRESS_TIMEOUT_S,
               message="the restarted node's log start offset to be 6")


def test_offsets_commit_for_partitions_that_live_on_other_nodes(cluster, topic_name):
    """A group's coordinator stores offsets for partitions it does not host (replication
    factor 1: each partition lives on one node). It answered UNKNOWN_TOPIC_OR_PARTITION for
    them, so consumers of such topics re-read from their last commit on every rebalance."""
    c = cluster.start()
    hosts = c.create_topic(topic_name, 3, replication_factor=1)  # {partition: its one replica}
    group = f"{topic_name}-group"
    consumer = ck_consumer(c.bootstrap(), **{"group.id": group})
    try:
        wanted = [ck.TopicPartition(topic_name, p, 10 + p) for p in range(3)]
        consumer.commit(offsets=wanted, asynchronous=False)
        coordinator = coordinator_id(c[1].bootstrap, group)
        elsewhere = [p for p, host in hosts.items() if host != coordinator]
        assert elsewhere, f"every partition is on the coordinator {coordinator}: {hosts}"
        got = consumer.committed([ck.TopicPartition(topic_name, p) for p in range(3)], timeout=15)
        assert [(t.partition, t.offset, t.error) for t in got] == [(p, 10 + p, None) for p in range(3)]
    finally:
        consumer.close()
