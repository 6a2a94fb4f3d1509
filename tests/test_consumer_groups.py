"""Consumer groups and the idempotent producer, with real clients against the real binary.

Every test starts its own chronik-server on a fresh data dir and free ports.
Group tests set --group-initial-rebalance-delay-ms low (Kafka's
group.initial.rebalance.delay.ms, default 3000) and use the broker's minimum
session timeout (6000 ms) so rebalances after a crash finish quickly.

Multi-member scenarios run every member as its own process (group_member.py)
so one can be closed cleanly (SIGTERM -> consumer.close()) or crashed (SIGKILL).
"""

from __future__ import annotations

import time
import uuid

import confluent_kafka as ck
import kafka.errors as Errors
import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from clients import (
    assert_read_matches,
    ck_admin,
    ck_create_topic,
    ck_produce,
    ck_read_all,
    kp_admin,
    kp_read_all,
    make_messages,
)
from groups import (
    describe_group,
    duplicates,
    group_args,
    member_assignments,
    wait_consumed,
    wait_group_settled,
)
from harness import wait_until

# Kafka's group.min.session.timeout.ms, the lowest session timeout a member may ask for.
MIN_SESSION_TIMEOUT_MS = 6000


@pytest.fixture
def group_server(server_factory):
    """A server whose first rebalance of an empty group ends without delay."""
    return server_factory(extra_args=group_args(0)).start()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------
# reading through a group until caught up
# ---------------------------------------------------------------------------


def ck_caught_up(consumer: ck.Consumer, topic: str, partitions: int) -> bool:
    """The consumer owns every partition of topic and its position is the high watermark on each."""
    assignment = [tp for tp in consumer.assignment() if tp.topic == topic]
    if sorted(tp.partition for tp in assignment) != list(range(partitions)):
        return False
    for tp in consumer.position(assignment):
        lo, hw = consumer.get_watermark_offsets(ck.TopicPartition(topic, tp.partition), timeout=10,
                                                cached=False)
        pos = tp.offset
        if pos < 0:
            # nothing consumed from it yet: it starts at the committed offset, else (earliest) at lo
            [c] = consumer.committed([ck.TopicPartition(topic, tp.partition)], timeout=10)
            pos = c.offset if c.offset >= 0 else lo
        if pos != hw:
            return False
    return True


def ck_group_read(consumer: ck.Consumer, topic: str, partitions: int, at_least: int,
                  timeout: float = 60.0) -> list[tuple[int, int, bytes]]:
    """Consume through the group until at least `at_least` records arrived and the
    consumer sits at the high watermark of every partition (so nothing more can come).
    Returns (partition, offset, value) in arrival order."""
    got: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + timeout
    while True:
        for m in consumer.consume(num_messages=500, timeout=0.2):
            if m.error() is not None:
                raise AssertionError(f"consumer error: {m.error()}")
            got.append((m.partition(), m.offset(), m.value()))
        if len(got) >= at_least and ck_caught_up(consumer, topic, partitions):
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s: {len(got)} records read (want >= {at_least}), "
                f"assignment {consumer.assignment()}")


def kp_caught_up(consumer: KafkaConsumer, topic: str, partitions: int) -> bool:
    assignment = [tp for tp in consumer.assignment() if tp.topic == topic]
    if sorted(tp.partition for tp in assignment) != list(range(partitions)):
        return False
    ends = consumer.end_offsets(assignment)
    return all(consumer.position(tp) == ends[tp] for tp in assignment)


def kp_group_read(consumer: KafkaConsumer, topic: str, partitions: int, at_least: int,
                  timeout: float = 60.0) -> list[tuple[int, int, bytes]]:
    got: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + timeout
    while True:
        for tp, records in consumer.poll(timeout_ms=200).items():
            got.extend((tp.partition, r.offset, r.value) for r in records)
        if len(got) >= at_least and kp_caught_up(consumer, topic, partitions):
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s: {len(got)} records read (want >= {at_least}), "
                f"assignment {consumer.assignment()}")


def assert_exactly_once(sent_ids: list[bytes], read_values: list[bytes]) -> None:
    sent, read = set(sent_ids), list(read_values)
    missing = sent - set(read)
    dupes = len(read) - len(set(read))
    extra = set(read) - sent
    assert (len(set(read)), len(missing), dupes, len(extra)) == (len(sent), 0, 0, 0), (
        f"{len(set(read))} unique of {len(sent)} sent, {len(missing)} missing, {dupes} duplicates, "
        f"{len(extra)} unexpected (e.g. missing {sorted(missing)[:3]})")


# ---------------------------------------------------------------------------
# 1. + 2. the chaos report's Test 1: default producer config, group consumer
# ---------------------------------------------------------------------------


def test_chaos_test1_kafka_python_default_producer_and_group_consumer(group_server, topic_name):
    """The chaos report's Test 1, verbatim: 100 unique messages, one group consumer."""
    bootstrap = group_server.bootstrap
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=3,
                             max_in_flight_requests_per_connection=1)
    try:
        # This is kafka-python's default path: these settings leave idempotence on.
        assert producer.config["enable_idempotence"] is True
        ids = [f"msg-{uuid.uuid4()}".encode() for _ in range(100)]
        futures = [producer.send(topic_name, value=i) for i in ids]
        producer.flush(timeout=60)
        for f in futures:
            f.get(timeout=30)
    finally:
        producer.close(timeout=10)

    def consume(at_least: int) -> list[bytes]:
        consumer = KafkaConsumer(topic_name, bootstrap_servers=bootstrap,
                                 group_id="chaos-test-consumer", auto_offset_reset="earliest")
        try:
            partitions = len(consumer.partitions_for_topic(topic_name) or ())
            assert partitions >= 1
            return [v for (_, _, v) in kp_group_read(consumer, topic_name, partitions, at_least)]
        finally:
            consumer.close()  # auto commit is on (the default): commits the positions

    assert_exactly_once(ids, consume(100))

    # The same consumer again (same group): only what was produced since it closed.
    more = [f"more-{uuid.uuid4()}".encode() for _ in range(10)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=3,
                             max_in_flight_requests_per_connection=1)
    try:
        for f in [producer.send(topic_name, value=i) for i in more]:
            f.get(timeout=30)
    finally:
        producer.close(timeout=10)
    assert_exactly_once(more, consume(10))


@pytest.mark.parametrize("idempotence", ["default", "enabled"])
def test_chaos_test1_confluent_producer_and_group_consumer(group_server, topic_name, idempotence):
    """Test 1 with librdkafka: acks=all with the default idempotence (off in librdkafka) and on."""
    bootstrap = group_server.bootstrap
    conf = {"bootstrap.servers": bootstrap, "acks": "all"}
    if idempotence == "enabled":
        conf["enable.idempotence"] = True
    producer = ck.Producer(conf)
    errors = []

    def produce(ids: list[bytes]) -> None:
        for i in ids:
            producer.produce(topic_name, value=i, on_delivery=lambda err, msg: err and errors.append(err))
        assert producer.flush(60) == 0
        assert not errors, errors[:3]

    def consume(at_least: int) -> list[bytes]:
        consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-test-consumer",
                                "auto.offset.reset": "earliest"})
        try:
            consumer.subscribe([topic_name])
            partitions = len(consumer.list_topics(topic_name, timeout=10).topics[topic_name].partitions)
            return [v for (_, _, v) in ck_group_read(consumer, topic_name, partitions, at_least)]
        finally:
            consumer.close()  # auto commit is on (the default): commits the positions

    ids = [f"msg-{uuid.uuid4()}".encode() for _ in range(100)]
    produce(ids)
    assert_exactly_once(ids, consume(100))

    # The same consumer again (same group): only what was produced since it closed.
    more = [f"more-{uuid.uuid4()}".encode() for _ in range(10)]
    produce(more)
    assert_exactly_once(more, consume(10))


# ---------------------------------------------------------------------------
# 3. assignors, clean leave, crash
# ---------------------------------------------------------------------------

ASSIGNOR_CASES = [
    ("kp", "range"),
    ("kp", "roundrobin"),
    ("ck", "range"),
    ("ck", "roundrobin"),
    ("ck", "cooperative-sticky"),
]
GROUP_PARTITIONS = 6


def check_batch(members, owners: dict[str, list[int]], acked: list[tuple[int, int]],
                msgs, what: str) -> None:
    """Each message of a batch produced while the group was stable was consumed exactly once,
    by the member owning its partition, with the value acknowledged at that offset."""
    value_at = {pos: m.value.decode() for pos, m in zip(acked, msgs)}
    by_member = {m.client_id: m for m in members}
    owner_of = {p: c for c, ps in owners.items() for p in ps}
    seen: dict[tuple[int, int], list[str]] = {}
    for m in by_member.values():
        for p, o, v in m.records():
            if (p, o) in value_at:
                assert v == value_at[(p, o)], f"{what}: {p}@{o} read as {v!r}, acked {value_at[(p, o)]!r}"
                seen.setdefault((p, o), []).append(m.client_id)
    assert set(seen) == set(value_at), f"{what}: {len(set(value_at) - set(seen))} never consumed"
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    assert not twice, f"{what}: consumed more than once: {dict(list(twice.items())[:5])}"
    wrong = {k: v for k, v in seen.items() if v != [owner_of[k[0]]]}
    assert not wrong, f"{what}: consumed by a member that does not own the partition: " \
                      f"{dict(list(wrong.items())[:5])}, owners {owners}"


def assert_balanced(owners: dict[str, list[int]], n_members: int) -> None:
    sizes = sorted(len(ps) for ps in owners.values())
    assert len(sizes) == n_members and sizes[-1] - sizes[0] <= 1, f"unbalanced assignment {owners}"


@pytest.mark.parametrize("client,strategy", ASSIGNOR_CASES, ids=[f"{c}-{s}" for c, s in ASSIGNOR_CASES])
def test_three_members_assignor_clean_leave_and_crash(server_factory, member_factory, topic_name,
                                                      client, strategy):
    srv = server_factory(extra_args=group_args(200)).start()
    bootstrap = srv.bootstrap
    ck_create_topic(bootstrap, topic_name, GROUP_PARTITIONS)
    group = unique(f"g-{client}-{strategy}")
    admin = ck_admin(bootstrap)

    # A known set of messages is there before anyone joins.
    batch0 = make_messages(600, GROUP_PARTITIONS, "before-join")
    acked0 = ck_produce(bootstrap, topic_name, batch0)

    if client == "ck":
        conf = {"partition.assignment.strategy": strategy,
                "session.timeout.ms": MIN_SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 500}
    else:
        conf = {"partition_assignment_strategy": [strategy],
                "session_timeout_ms": MIN_SESSION_TIMEOUT_MS, "heartbeat_interval_ms": 500}
    members = [member_factory(client, bootstrap, topic_name, group, f"{client}-{strategy}-m{i}", conf)
               for i in range(3)]

    # --- three members: a complete, disjoint, balanced assignment ----------------------------
    owners = wait_group_settled(admin, group, topic_name, members, GROUP_PARTITIONS, timeout=45,
                                what="3 members to own all partitions")
    assert_balanced(owners, 3)
    desc = describe_group(admin, group)
    assert desc.partition_assignor == strategy
    assert len(desc.members) == 3

    # Nothing produced before the group formed is skipped; a record is consumed twice only
    # if the member that first consumed it could not commit it (a rebalance interrupted it).
    wait_consumed(members, set(acked0), timeout=30, what="messages produced before the group formed")
    excusable = set().union(*(m.uncommitted() for m in members))
    dup0 = duplicates(members, set(acked0))
    assert set(dup0) <= excusable, (
        f"re-delivered although committed: {sorted(set(dup0) - excusable)[:10]}; "
        f"commit errors: {[m.commit_errors() for m in members]}")

    # Stable group: new messages go exactly once to the owner of their partition.
    batch1 = make_messages(600, GROUP_PARTITIONS, "stable-3")
    acked1 = ck_produce(bootstrap, topic_name, batch1)
    wait_consumed(members, set(acked1), timeout=30, what="messages produced to the stable group")
    check_batch(members, owners, acked1, batch1, "3 members, stable")

    # --- one member leaves cleanly (close() -> LeaveGroup) ---------------------------------------
    leaver, rest = members[0], members[1:]
    wait_until(leaver.all_committed, 15, message=f"{leaver.name} to commit what it consumed")
    left_at = time.monotonic()
    leaver.stop()
    owners2 = wait_group_settled(admin, group, topic_name, rest, GROUP_PARTITIONS, timeout=30,
                                 what="2 members to own all partitions after a clean leave")
    # A clean leave does not wait for the session timeout.
    assert time.monotonic() - left_at < MIN_SESSION_TIMEOUT_MS / 1000, (
        "rebalance after LeaveGroup took as long as a session timeout")
    assert_balanced(owners2, 2)
    if strategy == "cooperative-sticky":
        for c, ps in owners2.items():
            assert set(owners[c]) <= set(ps), f"sticky assignor moved {c}'s partitions: {owners} -> {owners2}"
    batch2 = make_messages(600, GROUP_PARTITIONS, "after-leave")
    acked2 = ck_produce(bootstrap, topic_name, batch2)
    wait_consumed(rest, set(acked2), timeout=30, what="messages produced after the clean leave")
    check_batch(rest, owners2, acked2, batch2, "2 members after a clean leave")

    # --- one member crashes (SIGKILL): its partitions move after the session timeout ---------------
    victim, survivor = rest
    wait_until(victim.all_committed, 15, message=f"{victim.name} to commit what it consumed")
    victim.kill9()
    killed_at = time.monotonic()
    batch3 = make_messages(600, GROUP_PARTITIONS, "after-crash")
    acked3 = ck_produce(bootstrap, topic_name, batch3)
    owners3 = wait_group_settled(admin, group, topic_name, [survivor], GROUP_PARTITIONS,
                                 timeout=MIN_SESSION_TIMEOUT_MS / 1000 + 20,
                                 what="the survivor to own all partitions after the crash")
    took = time.monotonic() - killed_at
    assert owners3 == {survivor.client_id: list(range(GROUP_PARTITIONS))}
    # The crashed member's last heartbeat was at most one heartbeat interval (0.5 s) before
    # the kill, so the coordinator may not expire it much earlier than the session timeout.
    assert took >= MIN_SESSION_TIMEOUT_MS / 1000 - 1.5, (
        f"crashed member's partitions moved after {took:.1f}s, before its session timed out")
    wait_consumed([survivor], set(acked3), timeout=30, what="messages produced after the crash")
    check_batch([survivor], owners3, acked3, batch3, f"survivor after the crash (took over in {took:.1f}s)")

    # Overall: nothing any member consumed was ever consumed again after being committed.
    everyone = set(acked0) | set(acked1) | set(acked2) | set(acked3)
    excusable = set().union(*(m.uncommitted() for m in members))
    dup = duplicates(members, everyone)
    assert set(dup) <= excusable, f"re-delivered although committed: {sorted(set(dup) - excusable)[:10]}"
    survivor.stop()


# ---------------------------------------------------------------------------
# 4. committed offsets (with metadata) survive a broker restart
# ---------------------------------------------------------------------------

META = {
    0: "chronik p0 ✓ métadonnées 🚀 \"quoted\" \\ tab\t end",
    1: "x" * 1000 + "|end",
}
COMMIT_AT = {0: 7, 1: 13}
PER_PARTITION = 20


def ck_commit_with_metadata(bootstrap: str, topic: str, group: str) -> None:
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        ck_group_read(c, topic, 2, at_least=2 * PER_PARTITION)
        c.commit(offsets=[ck.TopicPartition(topic, p, COMMIT_AT[p], metadata=META[p]) for p in (0, 1)],
                 asynchronous=False)
    finally:
        c.close()


def ck_committed(bootstrap: str, topic: str, group: str) -> dict[int, tuple[int, str | None]]:
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([ck.TopicPartition(topic, p) for p in (0, 1)], timeout=15)
        return {tp.partition: (tp.offset, tp.metadata) for tp in tps}
    finally:
        c.close()


def ck_resume(bootstrap: str, topic: str, group: str) -> list[tuple[int, int, bytes]]:
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        return ck_group_read(c, topic, 2, at_least=0)
    finally:
        c.close()


def kp_commit_with_metadata(bootstrap: str, topic: str, group: str) -> None:
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        kp_group_read(c, topic, 2, at_least=2 * PER_PARTITION)
        c.commit({TopicPartition(topic, p): OffsetAndMetadata(COMMIT_AT[p], META[p], -1) for p in (0, 1)})
    finally:
        c.close()


def kp_committed(bootstrap: str, topic: str, group: str) -> dict[int, tuple[int, str | None]]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        out = {}
        for p in (0, 1):
            oam = c.committed(TopicPartition(topic, p), metadata=True)
            out[p] = (oam.offset, oam.metadata) if oam is not None else (None, None)
        return out
    finally:
        c.close()


def kp_resume(bootstrap: str, topic: str, group: str) -> list[tuple[int, int, bytes]]:
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        return kp_group_read(c, topic, 2, at_least=0)
    finally:
        c.close()


CLIENT_OPS = {
    "ck": (ck_commit_with_metadata, ck_committed, ck_resume),
    "kp": (kp_commit_with_metadata, kp_committed, kp_resume),
}


@pytest.mark.parametrize("restart", ["sigterm", "kill9"])
@pytest.mark.parametrize("client", ["ck", "kp"])
def test_committed_offsets_and_metadata_survive_restart(group_server, topic_name, client, restart):
    commit, committed, resume = CLIENT_OPS[client]
    bootstrap = group_server.bootstrap
    ck_create_topic(bootstrap, topic_name, 2)
    msgs = make_messages(2 * PER_PARTITION, 2, "offsets")
    acked = ck_produce(bootstrap, topic_name, msgs)
    value_at = {pos: m.value for pos, m in zip(acked, msgs)}
    group = unique("g-restart")

    commit(bootstrap, topic_name, group)
    want = {p: (COMMIT_AT[p], META[p]) for p in (0, 1)}
    assert committed(bootstrap, topic_name, group) == want

    if restart == "sigterm":
        assert group_server.stop() == 0
    else:
        group_server.kill9()
    group_server.start()

    assert committed(bootstrap, topic_name, group) == want, "committed offsets/metadata changed by a restart"
    got = resume(bootstrap, topic_name, group)
    expected = sorted((p, o, value_at[(p, o)]) for p in (0, 1) for o in range(COMMIT_AT[p], PER_PARTITION))
    assert sorted(got) == expected, (
        f"resumed read differs: first offsets per partition "
        f"{ {p: min((o for q, o, _ in got if q == p), default=None) for p in (0, 1)} }, "
        f"{len(got)} records, expected {len(expected)}")


@pytest.mark.parametrize("restart", ["sigterm", "kill9"])
@pytest.mark.parametrize("client", ["ck", "kp"])
def test_live_members_keep_consuming_across_broker_restart(server_factory, member_factory, topic_name,
                                                           client, restart):
    """Members that stay up while the broker restarts carry on from their commits."""
    srv = server_factory(extra_args=group_args(200)).start()
    bootstrap = srv.bootstrap
    ck_create_topic(bootstrap, topic_name, 4)
    group = unique("g-live-restart")
    admin = ck_admin(bootstrap)
    conf = ({"session.timeout.ms": MIN_SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 500} if client == "ck"
            else {"session_timeout_ms": MIN_SESSION_TIMEOUT_MS, "heartbeat_interval_ms": 500})
    members = [member_factory(client, bootstrap, topic_name, group, f"{client}-live-m{i}", conf)
               for i in range(2)]
    owners = wait_group_settled(admin, group, topic_name, members, 4, timeout=30)
    batch1 = make_messages(200, 4, "before-restart")
    acked1 = ck_produce(bootstrap, topic_name, batch1)
    wait_consumed(members, set(acked1), timeout=30)
    check_batch(members, owners, acked1, batch1, "before the broker restart")
    for m in members:
        wait_until(m.all_committed, 15, message=f"{m.name} to commit what it consumed")

    if restart == "sigterm":
        assert srv.stop() == 0
    else:
        srv.kill9()
    srv.start()

    batch2 = make_messages(200, 4, "after-restart")
    acked2 = ck_produce(bootstrap, topic_name, batch2)
    wait_consumed(members, set(acked2), timeout=60, what="messages produced after the broker restart")
    wait_group_settled(admin, group, topic_name, members, 4, timeout=30,
                       what="the group to be stable with both members after the broker restart")
    # Nothing committed before the restart comes again, nothing after it is skipped or doubled.
    excusable = set().union(*(m.uncommitted() for m in members))
    dup = duplicates(members, set(acked1) | set(acked2))
    assert set(dup) <= excusable, (
        f"re-delivered although committed before the restart: {sorted(set(dup) - excusable)[:10]}")
    for m in members:
        assert not m.errors(), f"{m.name}: consumer errors {m.errors()[:3]}"
    for m in members:
        m.stop()


# ---------------------------------------------------------------------------
# 5. static membership (KIP-345)
# ---------------------------------------------------------------------------


def test_static_member_restart_within_session_timeout_does_not_rebalance(server_factory, member_factory,
                                                                          topic_name):
    srv = server_factory(extra_args=group_args(200)).start()
    bootstrap = srv.bootstrap
    partitions = 4
    session_ms = 10_000
    ck_create_topic(bootstrap, topic_name, partitions)
    group = unique("g-static")
    admin = ck_admin(bootstrap)

    def conf(instance: str, client_id: str) -> dict:
        return {"group.instance.id": instance, "client.id": client_id,
                "session.timeout.ms": session_ms, "heartbeat.interval.ms": 500}

    a = member_factory("ck", bootstrap, topic_name, group, "static-a", conf("inst-a", "static-a"))
    b = member_factory("ck", bootstrap, topic_name, group, "static-b", conf("inst-b", "static-b"))
    owners = wait_group_settled(admin, group, topic_name, [a, b], partitions, timeout=30,
                                what="2 static members to own all partitions")
    assert_balanced(owners, 2)
    desc = describe_group(admin, group)
    instances = {m.group_instance_id: m.client_id for m in desc.members}
    assert instances == {"inst-a": "static-a", "inst-b": "static-b"}
    a_assigns, a_revokes = len(a.callbacks("assign")), len(a.callbacks("revoke"))

    batch1 = make_messages(80, partitions, "static-1")
    acked1 = ck_produce(bootstrap, topic_name, batch1)
    wait_consumed([a, b], set(acked1), timeout=30)
    check_batch([a, b], owners, acked1, batch1, "two static members")

    # b closes without leaving the group (librdkafka sends no LeaveGroup for a static member)...
    wait_until(b.all_committed, 15, message="static-b to commit what it consumed")
    b.stop()
    stopped_at = time.monotonic()
    desc = describe_group(admin, group)
    assert desc.state == ConsumerGroupState.STABLE and len(desc.members) == 2, (
        f"a static member's close changed the group: state {desc.state}, "
        f"members {member_assignments(desc, topic_name)}")

    # ... messages arrive for its partitions while it is away ...
    batch2 = make_messages(80, partitions, "static-2")
    acked2 = ck_produce(bootstrap, topic_name, batch2)

    # ... and it comes back with the same group.instance.id within the session timeout.
    b2 = member_factory("ck", bootstrap, topic_name, group, "static-b2", conf("inst-b", "static-b2"))
    owners2 = wait_group_settled(admin, group, topic_name, [a, b2], partitions,
                                 timeout=session_ms / 1000,
                                 what="the restarted static member to get its partitions back")
    assert time.monotonic() - stopped_at < session_ms / 1000, "restart took longer than the session timeout"
    assert owners2 == {"static-a": owners["static-a"], "static-b2": owners["static-b"]}, (
        f"assignment changed across a static member's restart: {owners} -> {owners2}")
    desc = describe_group(admin, group)
    assert {m.group_instance_id: m.client_id for m in desc.members} == {"inst-a": "static-a",
                                                                       "inst-b": "static-b2"}

    # The restarted member resumes from b's commits; a keeps consuming its own partitions.
    wait_consumed([a, b, b2], set(acked2), timeout=30)
    check_batch([a, b2], owners2, acked2, batch2, "static member restarted")
    batch3 = make_messages(80, partitions, "static-3")
    acked3 = ck_produce(bootstrap, topic_name, batch3)
    wait_consumed([a, b2], set(acked3), timeout=30)
    check_batch([a, b2], owners2, acked3, batch3, "after the static restart")

    # No rebalance happened: the other member saw no revoke and no new assignment.
    assert (len(a.callbacks("assign")), len(a.callbacks("revoke"))) == (a_assigns, a_revokes), (
        f"static-a went through a rebalance: {a.summary()}")
    assert b2.callbacks("assign")[0]["parts"] == owners["static-b"]
    assert len(b2.callbacks("assign")) == 1 and not b2.callbacks("revoke")
    a.stop()
    b2.stop()


def test_static_member_gone_longer_than_session_timeout_is_replaced(server_factory, member_factory,
                                                                    topic_name):
    """A static member that does not come back is removed when its session times out."""
    srv = server_factory(extra_args=group_args(200)).start()
    bootstrap = srv.bootstrap
    ck_create_topic(bootstrap, topic_name, 4)
    group = unique("g-static-expiry")
    admin = ck_admin(bootstrap)

    def conf(instance: str) -> dict:
        return {"group.instance.id": instance, "session.timeout.ms": MIN_SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": 500}

    a = member_factory("ck", bootstrap, topic_name, group, "expiry-a", conf("inst-a"))
    b = member_factory("ck", bootstrap, topic_name, group, "expiry-b", conf("inst-b"))
    wait_group_settled(admin, group, topic_name, [a, b], 4, timeout=30)
    b.stop()
    stopped_at = time.monotonic()
    owners = wait_group_settled(admin, group, topic_name, [a], 4,
                                timeout=MIN_SESSION_TIMEOUT_MS / 1000 + 20,
                                what="the remaining static member to own all partitions")
    took = time.monotonic() - stopped_at
    assert took >= MIN_SESSION_TIMEOUT_MS / 1000 - 1.5, (
        f"a static member that closed was removed after {took:.1f}s, before its session timed out")
    assert [m.group_instance_id for m in describe_group(admin, group).members] == ["inst-a"]
    acked = ck_produce(bootstrap, topic_name, make_messages(40, 4, "expiry"))
    wait_consumed([a], set(acked), timeout=30)
    assert owners == {"expiry-a": [0, 1, 2, 3]}
    a.stop()


# ---------------------------------------------------------------------------
# 6. admin: list, describe, delete groups; offsets
# ---------------------------------------------------------------------------


def ck_error_code(fut) -> int | None:
    try:
        fut.result(timeout=30)
        return None
    except ck.KafkaException as e:
        return e.args[0].code()


def test_admin_list_describe_delete_groups_and_offsets(group_server, topic_name):
    bootstrap = group_server.bootstrap
    ck_create_topic(bootstrap, topic_name, 3)
    acked = ck_produce(bootstrap, topic_name, make_messages(30, 3, "admin"))
    group = unique("g-admin")
    admin = ck_admin(bootstrap)
    kadmin = kp_admin(bootstrap)
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                            "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic_name])
        ck_group_read(consumer, topic_name, 3, at_least=len(acked))
        consumer.commit(asynchronous=False)

        # --- a group with a live member: listed and described as Stable, cannot be deleted
        listed = admin.list_consumer_groups(request_timeout=10).result(timeout=30)
        assert not listed.errors
        states = {g.group_id: g.state for g in listed.valid}
        assert states.get(group) == ConsumerGroupState.STABLE, f"listed groups: {states}"
        kp_listed = {g["group_id"]: g for g in kadmin.list_groups()}
        assert group in kp_listed and kp_listed[group]["protocol_type"] == "consumer"
        assert kp_listed[group].get("group_state", "Stable") == "Stable"

        desc = describe_group(admin, group)
        assert desc.state == ConsumerGroupState.STABLE and len(desc.members) == 1
        assert member_assignments(desc, topic_name) == {desc.members[0].client_id: [0, 1, 2]}
        kp_desc = kadmin.describe_groups([group])[group]
        assert kp_desc["error"] is None and kp_desc["group_state"] == "Stable"
        assert len(kp_desc["members"]) == 1

        # ListGroups with a state filter (KIP-518)
        stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}, request_timeout=10).result(30)
        empty = admin.list_consumer_groups(states={ConsumerGroupState.EMPTY}, request_timeout=10).result(30)
        assert group in {g.group_id for g in stable.valid} and group not in {g.group_id for g in empty.valid}
        assert group in {g["group_id"] for g in kadmin.list_groups(states_filter=["Stable"])}
        assert group not in {g["group_id"] for g in kadmin.list_groups(states_filter=["Empty"])}

        code = ck_error_code(admin.delete_consumer_groups([group], request_timeout=10)[group])
        assert code == ck.KafkaError.NON_EMPTY_GROUP
        assert kadmin.delete_groups([group]) == {group: "NonEmptyGroupError"}

        # --- committed offsets as the admin clients see them
        want = {p: 10 for p in range(3)}
        kp_offsets = kadmin.list_group_offsets(group)[group]
        assert {tp.partition: oam.offset for tp, oam in kp_offsets.items() if tp.topic == topic_name} == want
        res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=30)
        assert {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == topic_name} == want

        # OffsetDelete: refused for a topic the live group subscribes to (GROUP_SUBSCRIBED_TO_TOPIC)
        assert kadmin.delete_group_offsets(group, [TopicPartition(topic_name, 0)]) == {
            TopicPartition(topic_name, 0): Errors.GroupSubscribedToTopicError}
    finally:
        consumer.close()

    # --- the last member left: Empty, still listed with its offsets, and deletable
    wait_until(lambda: describe_group(admin, group).state == ConsumerGroupState.EMPTY, 15,
               message="group to become Empty after its last member left")
    listed = admin.list_consumer_groups(request_timeout=10).result(timeout=30)
    assert {g.group_id: g.state for g in listed.valid}.get(group) == ConsumerGroupState.EMPTY
    # ... OffsetDelete works once nobody subscribes: partition 0's offset goes, the others stay
    assert kadmin.delete_group_offsets(group, [TopicPartition(topic_name, 0)]) == {
        TopicPartition(topic_name, 0): Errors.NoError}
    left = {tp.partition: oam.offset for tp, oam in kadmin.list_group_offsets(group)[group].items()}
    assert left == {1: 10, 2: 10}
    assert ck_error_code(admin.delete_consumer_groups([group], request_timeout=10)[group]) is None
    listed = admin.list_consumer_groups(request_timeout=10).result(timeout=30)
    assert group not in {g.group_id for g in listed.valid}
    assert kadmin.list_group_offsets(group)[group] == {}, "offsets of a deleted group are still there"
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([ck.TopicPartition(topic_name, p) for p in range(3)], timeout=15)
        assert [tp.offset for tp in tps] == [ck.OFFSET_INVALID] * 3
    finally:
        c.close()
    # deleting it again: it no longer exists
    code = ck_error_code(admin.delete_consumer_groups([group], request_timeout=10)[group])
    assert code == ck.KafkaError.GROUP_ID_NOT_FOUND

    # kafka-python deletes an empty group too (offsets committed through its admin client)
    group2 = unique("g-admin-kp")
    result = kadmin.alter_group_offsets(group2, {TopicPartition(topic_name, 1): OffsetAndMetadata(4, "m", -1)})
    assert all(err is Errors.NoError for err in result.values()), result
    assert {tp.partition: (o.offset, o.metadata)
            for tp, o in kadmin.list_group_offsets(group2)[group2].items()} == {1: (4, "m")}
    assert kadmin.delete_groups([group2]) == {group2: "OK"}
    assert kadmin.list_group_offsets(group2)[group2] == {}
    kadmin.close()


# ---------------------------------------------------------------------------
# 7. the idempotent producer on each client's default path
# ---------------------------------------------------------------------------


def test_kafka_python_producer_with_no_options_is_idempotent_and_exact(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 4)
    msgs = make_messages(2000, 4, "kp-default")
    producer = KafkaProducer(bootstrap_servers=server.bootstrap)
    try:
        assert producer.config["enable_idempotence"] is True
        futures = [producer.send(topic_name, value=m.value, key=m.key, partition=m.partition) for m in msgs]
        producer.flush(timeout=60)
        acked = [(md.partition, md.offset) for md in (f.get(timeout=30) for f in futures)]
        pid = producer._transaction_manager.producer_id_and_epoch
        assert pid.producer_id >= 0 and pid.epoch >= 0, f"no producer id from InitProducerId: {pid}"
    finally:
        producer.close(timeout=10)
    assert_read_matches(msgs, kp_read_all(server.bootstrap, topic_name, 4), acked)


def test_confluent_idempotent_producer_10k_over_4_partitions_exact(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 4)
    msgs = make_messages(10_000, 4, "ck-idem")
    acked = ck_produce(server.bootstrap, topic_name, msgs, **{"enable.idempotence": True})
    assert_read_matches(msgs, ck_read_all(server.bootstrap, topic_name, 4), acked)


# The retry a client makes when an ack is lost, made by hand with kafka-python's own protocol
# codec (no client exposes "send this batch again"): the broker must recognise the batch by
# producer id, epoch and sequence, also after a crash.


def _wire_call(sock, request, response_cls, version: int, correlation_id: int):
    from kafka_wire import recv_frame

    request.with_header(correlation_id=correlation_id, client_id="chronik-idempotence-test")
    sock.sendall(request.encode(version=version, header=True, framed=True))
    return response_cls.decode(recv_frame(sock), version=version, header=True)


def test_idempotent_produce_retry_is_deduplicated_also_after_kill9(server, topic_name):
    from kafka.protocol.producer import ProduceRequest, ProduceResponse
    from kafka.protocol.producer.transaction import InitProducerIdRequest, InitProducerIdResponse
    from kafka.record.default_records import DefaultRecordBatchBuilder

    from kafka_wire import connect

    ck_create_topic(server.bootstrap, topic_name, 1)
    corr = iter(range(1, 1000))
    sock = connect(server.bootstrap)
    try:
        init = _wire_call(sock, InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000,
                                                      producer_id=-1, producer_epoch=-1),
                          InitProducerIdResponse, 4, next(corr))
        assert init.error_code == 0 and init.producer_id >= 0 and init.producer_epoch >= 0, init
        pid, epoch = init.producer_id, init.producer_epoch

        def produce(seq: int, values: list[bytes]) -> tuple[int, int]:
            b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                          producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                          batch_size=1 << 20)
            for i, v in enumerate(values):
                b.append(i, timestamp=int(time.time() * 1000), key=None, value=v, headers=[])
            topic = ProduceRequest.TopicProduceData
            req = ProduceRequest(transactional_id=None, acks=-1, timeout_ms=10000, topic_data=[
                topic(name=topic_name, partition_data=[
                    topic.PartitionProduceData(index=0, records=bytes(b.build()))])])
            resp = _wire_call(sock, req, ProduceResponse, 9, next(corr))
            pr = resp.responses[0].partition_responses[0]
            return pr.error_code, pr.base_offset

        assert produce(0, [b"a", b"b", b"c"]) == (0, 0)
        # Kafka: a duplicate of one of the last batches is answered with the original offset.
        assert produce(0, [b"a", b"b", b"c"]) == (0, 0), "retried batch not recognised as a duplicate"
        assert produce(3, [b"d"]) == (0, 3)
        # A gap in the sequence: OUT_OF_ORDER_SEQUENCE_NUMBER (45), nothing written.
        assert produce(10, [b"x"])[0] == 45
        assert produce(3, [b"d"]) == (0, 3), "retried batch not recognised as a duplicate"
    finally:
        sock.close()

    server.kill9()
    server.start()
    sock = connect(server.bootstrap)
    try:
        # The producer state was rebuilt from the log: the retry is still a duplicate.
        assert produce(3, [b"d"]) == (0, 3), "retry after a crash written again"
        assert produce(4, [b"e"]) == (0, 4)
    finally:
        sock.close()
    read = ck_read_all(server.bootstrap, topic_name, 1)
    assert [(o, v) for (o, _, v) in read[0]] == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d"), (4, b"e")]
