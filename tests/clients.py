"""Helpers around the real Kafka client libraries used by the suite.

Reading is always done with manual partition assignment (no consumer group
coordination): kafka-python with group_id=None, confluent-kafka with assign()
and explicit offsets and auto-commit disabled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic

# ---------------------------------------------------------------------------
# Test data
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    partition: int
    key: bytes
    value: bytes


# A bit of repetitive filler so compression codecs have something to do.
_FILLER = b"chronik-payload-" * 6


def make_messages(n: int, partitions: int, tag: str) -> list[Msg]:
    """n unique messages, round-robin over partitions, in send order."""
    return [
        Msg(i % partitions, f"k{i}".encode(), f"{tag}-{i:06d}-".encode() + _FILLER)
        for i in range(n)
    ]


def assert_read_matches(sent: list[Msg], read: dict[int, list[tuple[int, bytes, bytes]]],
                        acked: list[tuple[int, int]] | None = None) -> None:
    """Check that read back == sent exactly.

    - the multiset of values read equals the values sent (no loss, no duplicates);
    - per partition, the values in offset order equal the send order;
    - offsets in each partition are 0..n-1 (fresh topic, no gaps);
    - keys round-trip;
    - if acked offsets (partition, offset) per sent message are given, every
      message is found at exactly the offset it was acknowledged with.
    """
    sent_values = sorted(m.value for m in sent)
    read_values = sorted(v for recs in read.values() for (_, _, v) in recs)
    assert len(read_values) == len(sent_values), (
        f"read {len(read_values)} records, sent {len(sent_values)}"
    )
    missing = set(sent_values) - set(read_values)
    extra = set(read_values) - set(sent_values)
    assert not missing and not extra, (
        f"{len(missing)} missing (e.g. {sorted(missing)[:3]}), {len(extra)} unexpected (e.g. {sorted(extra)[:3]})"
    )
    assert read_values == sent_values, "duplicate records read back"

    partitions = sorted({m.partition for m in sent} | set(read))
    for p in partitions:
        expected = [(m.key, m.value) for m in sent if m.partition == p]
        got = read.get(p, [])
        offsets = [o for (o, _, _) in got]
        assert offsets == list(range(len(got))), f"partition {p}: offsets not contiguous from 0"
        got_kv = [(k, v) for (_, k, v) in got]
        if got_kv != expected:
            first = next(i for i, (a, b) in enumerate(zip(got_kv, expected)) if a != b) \
                if any(a != b for a, b in zip(got_kv, expected)) else min(len(got_kv), len(expected))
            raise AssertionError(
                f"partition {p}: order differs from send order at index {first}: "
                f"got {got_kv[first:first + 2]}, expected {expected[first:first + 2]}"
            )

    if acked is not None:
        assert len(acked) == len(sent)
        by_pos = {p: {o: v for (o, _, v) in recs} for p, recs in read.items()}
        for m, (p, off) in zip(sent, acked):
            assert p == m.partition, f"{m.value!r} acked on partition {p}, sent to {m.partition}"
            assert by_pos.get(p, {}).get(off) == m.value, (
                f"{m.value!r} acked at {p}@{off} but found {by_pos.get(p, {}).get(off)!r} there"
            )


# ---------------------------------------------------------------------------
# confluent-kafka
# ---------------------------------------------------------------------------


def ck_admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def ck_create_topic(bootstrap: str, name: str, partitions: int, config: dict | None = None) -> None:
    admin = ck_admin(bootstrap)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=15,
        request_timeout=15,
    )
    futures[name].result(timeout=30)
    ck_wait_topic(admin, name, partitions)


def ck_wait_topic(admin: AdminClient, name: str, partitions: int, timeout: float = 15.0) -> None:
    """Wait until metadata shows the topic with the given partition count, all with leaders."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        md = admin.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader >= 0 and p.error is None for p in t.partitions.values()
        ):
            return
        last = t
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"topic {name} not visible with {partitions} partitions: "
                f"{None if last is None else (last.error, {k: (v.leader, v.error) for k, v in last.partitions.items()})}"
            )
        time.sleep(0.1)


def ck_producer(bootstrap: str, **conf) -> ck.Producer:
    """A librdkafka producer on its defaults (enable.idempotence is librdkafka's default, off)
    unless conf says otherwise."""
    base = {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "message.timeout.ms": 60000,
    }
    base.update(conf)
    return ck.Producer(base)


def ck_produce(bootstrap: str, topic: str, msgs: list[Msg], **conf) -> list[tuple[int, int]]:
    """Produce msgs (explicit partitions) and return (partition, offset) per message, in order.

    Raises if any delivery report carries an error.
    """
    producer = ck_producer(bootstrap, **conf)
    results: list[tuple[int, int] | None] = [None] * len(msgs)
    errors: list[str] = []

    def make_cb(i):
        def cb(err, msg):
            if err is not None:
                errors.append(f"message {i}: {err}")
            else:
                results[i] = (msg.partition(), msg.offset())
        return cb

    for i, m in enumerate(msgs):
        while True:
            try:
                producer.produce(topic, value=m.value, key=m.key, partition=m.partition,
                                 on_delivery=make_cb(i))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(90)
    assert remaining == 0, f"{remaining} messages still undelivered after flush"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:3]}"
    assert all(r is not None for r in results), "missing delivery reports"
    return results  # type: ignore[return-value]


def ck_consumer(bootstrap: str, **conf) -> ck.Consumer:
    base = {
        "bootstrap.servers": bootstrap,
        # group.id is mandatory for the Python Consumer; we never use the group:
        # partitions are assigned manually and nothing is committed.
        "group.id": "chronik-blackbox-reader",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    }
    base.update(conf)
    return ck.Consumer(base)


def ck_high_watermarks(consumer: ck.Consumer, topic: str, partitions: int) -> dict[int, int]:
    return {
        p: consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10, cached=False)[1]
        for p in range(partitions)
    }


def ck_read_all(bootstrap: str, topic: str, partitions: int, timeout: float = 90.0,
                expected_total: int | None = None) -> dict[int, list[tuple[int, bytes, bytes]]]:
    """Read every record of every partition, from offset 0 up to the high watermark.

    If expected_total is given, first waits (bounded) until the high watermarks
    add up to at least that many records (needed for acks=0).
    Returns {partition: [(offset, key, value), ...]} in offset order.
    """
    consumer = ck_consumer(bootstrap)
    try:
        deadline = time.monotonic() + timeout
        hw = ck_high_watermarks(consumer, topic, partitions)
        if expected_total is not None:
            while sum(hw.values()) < expected_total:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"high watermarks {hw} never reached {expected_total} records")
                time.sleep(0.1)
                hw = ck_high_watermarks(consumer, topic, partitions)
        consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(partitions)])
        out: dict[int, list[tuple[int, bytes, bytes]]] = {p: [] for p in range(partitions)}
        next_off = {p: 0 for p in range(partitions)}
        other_errors = []
        while any(next_off[p] < hw[p] for p in range(partitions)):
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"read stalled: positions {next_off} vs high watermarks {hw}; "
                    f"client errors: {other_errors[:5]}")
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if msg.topic() == topic and err.code() != ck.KafkaError._PARTITION_EOF:
                        raise AssertionError(f"fetch error on {topic}[{msg.partition()}]: {err}")
                    # e.g. group-coordinator lookups failing: not part of what we test here
                    other_errors.append(str(err))
                    continue
                p, off = msg.partition(), msg.offset()
                if off >= hw[p]:
                    continue  # beyond the snapshot we compare against
                out[p].append((off, msg.key(), msg.value()))
                next_off[p] = off + 1
        return out
    finally:
        consumer.close()


# ---------------------------------------------------------------------------
# kafka-python
# ---------------------------------------------------------------------------


def kp_producer(bootstrap: str, **conf):
    """A kafka-python producer on its defaults (idempotent, unless conf conflicts with that,
    e.g. acks=0/1, or disables it)."""
    from kafka import KafkaProducer

    base = dict(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        batch_size=64 * 1024,
        request_timeout_ms=30000,
    )
    base.update(conf)
    return KafkaProducer(**base)


def kp_produce(bootstrap: str, topic: str, msgs: list[Msg], **conf) -> list[tuple[int, int]]:
    producer = kp_producer(bootstrap, **conf)
    try:
        futures = [producer.send(topic, value=m.value, key=m.key, partition=m.partition) for m in msgs]
        producer.flush(timeout=90)
        out = []
        for f in futures:
            md = f.get(timeout=30)
            out.append((md.partition, md.offset))
        return out
    finally:
        producer.close(timeout=10)


def kp_consumer(bootstrap: str, **conf):
    from kafka import KafkaConsumer

    base = dict(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=30000,
    )
    base.update(conf)
    return KafkaConsumer(**base)


def kp_read_all(bootstrap: str, topic: str, partitions: int, timeout: float = 90.0,
                expected_total: int | None = None) -> dict[int, list[tuple[int, bytes, bytes]]]:
    from kafka import TopicPartition

    consumer = kp_consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        deadline = time.monotonic() + timeout
        hw = {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
        if expected_total is not None:
            while sum(hw.values()) < expected_total:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"high watermarks {hw} never reached {expected_total} records")
                time.sleep(0.1)
                hw = {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: dict[int, list[tuple[int, bytes, bytes]]] = {p: [] for p in range(partitions)}
        next_off = {p: 0 for p in range(partitions)}
        while any(next_off[p] < hw[p] for p in range(partitions)):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"read stalled: positions {next_off} vs high watermarks {hw}")
            batches = consumer.poll(timeout_ms=500, max_records=2000)
            for tp, records in batches.items():
                for r in records:
                    if r.offset >= hw[tp.partition]:
                        continue
                    out[tp.partition].append((r.offset, r.key, r.value))
                    next_off[tp.partition] = r.offset + 1
        return out
    finally:
        consumer.close()


def kp_admin(bootstrap: str):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
