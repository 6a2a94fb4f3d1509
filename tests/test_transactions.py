"""Transactions on a single node: transactional producers (confluent-kafka and kafka-python),
read_committed / read_uncommitted consumers, offsets committed inside transactions
(send_offsets_to_transaction), fencing, the transaction timeout, and a crash restart.

Reading "everything" of a partition is made exact with sentinels: after the transactions under
test, a plain (non-transactional) record is appended to every partition. A read_committed
consumer can only see it once the last stable offset has passed every earlier transaction, so
the values read up to and including the sentinel are exactly the partition's visible records.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import confluent_kafka as ck

from clients import Msg, ck_consumer, ck_create_topic, ck_produce, kp_consumer, kp_produce, kp_producer
from harness import wait_until

# Bound on every single client operation on a transaction (seconds).
TXN_OP_TIMEOUT = 15
# How long a negative check ("nothing more arrives") keeps fetching.
QUIET_PERIOD_S = 1.5

FENCED_CODES = {ck.KafkaError._FENCED, ck.KafkaError.PRODUCER_FENCED, ck.KafkaError.INVALID_PRODUCER_EPOCH}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def txn_producer(bootstrap: str, transactional_id: str, **conf) -> ck.Producer:
    """A confluent-kafka transactional producer (transactional.id implies idempotence)."""
    base = {
        "bootstrap.servers": bootstrap,
        "transactional.id": transactional_id,
        "linger.ms": 5,
    }
    base.update(conf)
    return ck.Producer(base)


def produce_txn(producer: ck.Producer, topic: str, records: list[tuple[int, bytes]]) -> list[tuple[int, int]]:
    """Produce (partition, value) records inside the producer's open transaction and flush them
    (so they are on the broker); returns the (partition, offset) each one was stored at."""
    results: list[tuple[int, int] | None] = [None] * len(records)
    errors: list[str] = []

    def make_cb(i):
        def cb(err, msg):
            if err is not None:
                errors.append(f"record {i}: {err}")
            else:
                results[i] = (msg.partition(), msg.offset())
        return cb

    for i, (p, value) in enumerate(records):
        producer.produce(topic, value=value, key=value, partition=p, on_delivery=make_cb(i))
    remaining = producer.flush(TXN_OP_TIMEOUT)
    assert remaining == 0, f"{remaining} transactional records still undelivered after flush"
    assert not errors, f"delivery errors: {errors[:3]}"
    return results  # type: ignore[return-value]


def plain_produce(bootstrap: str, topic: str, records: list[tuple[int, bytes]]) -> list[tuple[int, int]]:
    """Non-transactional records (acks=all), e.g. sentinels."""
    return ck_produce(bootstrap, topic, [Msg(p, v, v) for p, v in records], acks="all")


def spread(tag: str, n: int, partitions: int) -> list[tuple[int, bytes]]:
    """n unique (partition, value) records, round-robin over the partitions."""
    return [(i % partitions, f"{tag}-{i:03d}".encode()) for i in range(n)]


def per_partition(*groups: list[tuple[int, bytes]], partitions: int) -> dict[int, list[bytes]]:
    """The values of the given record lists per partition, in order (lists concatenated)."""
    out: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    for records in groups:
        for p, v in records:
            out[p].append(v)
    return out


def sentinels(tag: str, partitions: int) -> list[tuple[int, bytes]]:
    return [(p, f"{tag}-sentinel-p{p}".encode()) for p in range(partitions)]


def first_offsets(delivered: list[tuple[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for p, off in delivered:
        out[p] = min(off, out.get(p, off))
    return out


class Reader:
    """A confluent-kafka consumer with one isolation level, manually assigned to every partition
    of a topic from the beginning; keeps every (offset, value) it has received."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, isolation: str):
        self.topic = topic
        self.partitions = partitions
        self.consumer = ck_consumer(bootstrap, **{
            "isolation.level": isolation,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "fetch.wait.max.ms": 100,
        })
        self.consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(partitions)])
        self.records: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}

    def poll_once(self, timeout: float = 0.2) -> None:
        for msg in self.consumer.consume(num_messages=1000, timeout=timeout):
            err = msg.error()
            if err is not None:
                if err.code() == ck.KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"fetch error on {msg.topic()}[{msg.partition()}]: {err}")
            self.records[msg.partition()].append((msg.offset(), msg.value()))

    def values(self) -> dict[int, list[bytes]]:
        return {p: [v for _, v in recs] for p, recs in self.records.items()}

    def all_values(self) -> set[bytes]:
        return {v for recs in self.values().values() for v in recs}

    def read_until(self, predicate, timeout: float, what: str) -> None:
        def step():
            self.poll_once()
            return predicate()
        try:
            wait_until(step, timeout, interval=0.0, message=what)
        except TimeoutError as e:
            raise AssertionError(f"{e}; read so far: {self.values()}") from None

    def read_until_values(self, wanted: set[bytes], timeout: float = 15.0) -> None:
        self.read_until(lambda: wanted <= self.all_values(), timeout, f"{sorted(wanted)} to be read")

    def keep_fetching(self, seconds: float) -> None:
        """Negative checks: keep fetching for a bounded time (nothing may arrive meanwhile)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll_once(0.1)

    def end_offsets(self) -> dict[int, int]:
        """ListOffsets(latest) with this reader's isolation level: the last stable offset for
        read_committed, the high watermark for read_uncommitted."""
        return {
            p: self.consumer.get_watermark_offsets(ck.TopicPartition(self.topic, p), timeout=10, cached=False)[1]
            for p in range(self.partitions)
        }

    def close(self) -> None:
        self.consumer.close()


def read_through_sentinels(bootstrap: str, topic: str, partitions: int, isolation: str,
                           marks: list[tuple[int, bytes]], timeout: float = 15.0) -> dict[int, list[bytes]]:
    """Everything `isolation` lets a consumer see, per partition, up to the sentinels in `marks`
    (which must be the last records of their partitions)."""
    reader = Reader(bootstrap, topic, partitions, isolation)
    try:
        reader.read_until_values({v for _, v in marks}, timeout)
        return reader.values()
    finally:
        reader.close()


def kafka_error_of(operation, *args) -> ck.KafkaError:
    """The KafkaError that operation(*args) raises (it must raise one).

    Only the error is kept, not the exception: a traceback would keep the test's frame, and
    with it the producers, alive after the server is gone.
    """
    try:
        operation(*args)
    except ck.KafkaException as e:
        err = e.args[0]
    else:
        raise AssertionError(f"{operation.__name__}{args} did not fail")
    assert isinstance(err, ck.KafkaError), f"unexpected exception payload {err!r}"
    return err


# ---------------------------------------------------------------------------
# confluent-kafka
# ---------------------------------------------------------------------------


def test_committed_visible_aborted_never_read_committed_vs_uncommitted(server, topic_name):
    partitions = 3
    ck_create_topic(server.bootstrap, topic_name, partitions)
    producer = txn_producer(server.bootstrap, f"txn-{topic_name}")
    producer.init_transactions(TXN_OP_TIMEOUT)

    first = spread("first-committed", 9, partitions)
    producer.begin_transaction()
    produce_txn(producer, topic_name, first)
    producer.commit_transaction(TXN_OP_TIMEOUT)

    aborted = spread("aborted", 9, partitions)
    producer.begin_transaction()
    produce_txn(producer, topic_name, aborted)  # on the broker before the abort
    producer.abort_transaction(TXN_OP_TIMEOUT)

    second = spread("second-committed", 9, partitions)
    producer.begin_transaction()
    produce_txn(producer, topic_name, second)
    producer.commit_transaction(TXN_OP_TIMEOUT)

    marks = sentinels("end", partitions)
    plain_produce(server.bootstrap, topic_name, marks)

    committed = read_through_sentinels(server.bootstrap, topic_name, partitions, "read_committed", marks)
    assert committed == per_partition(first, second, marks, partitions=partitions)

    uncommitted = read_through_sentinels(server.bootstrap, topic_name, partitions, "read_uncommitted", marks)
    assert uncommitted == per_partition(first, aborted, second, marks, partitions=partitions)


def test_open_transaction_invisible_to_read_committed_until_commit(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 1)
    plain_produce(server.bootstrap, topic_name, [(0, b"before-txn")])

    producer = txn_producer(server.bootstrap, f"txn-{topic_name}")
    producer.init_transactions(TXN_OP_TIMEOUT)
    producer.begin_transaction()
    open_records = spread("in-open-txn", 5, 1)
    delivered = produce_txn(producer, topic_name, open_records)
    assert [off for _, off in delivered] == [1, 2, 3, 4, 5]
    # A plain record after the open transaction's records.
    plain_produce(server.bootstrap, topic_name, [(0, b"after-txn")])

    open_values = [v for _, v in open_records]
    uncommitted = Reader(server.bootstrap, topic_name, 1, "read_uncommitted")
    committed = Reader(server.bootstrap, topic_name, 1, "read_committed")
    try:
        # The records are on the broker: read_uncommitted sees them all.
        uncommitted.read_until_values({b"after-txn"})
        assert uncommitted.values() == {0: [b"before-txn", *open_values, b"after-txn"]}
        assert uncommitted.end_offsets() == {0: 7}

        # read_committed stops at the last stable offset: the open transaction's first record.
        assert committed.end_offsets() == {0: 1}
        committed.read_until_values({b"before-txn"})
        committed.keep_fetching(QUIET_PERIOD_S)
        assert committed.values() == {0: [b"before-txn"]}

        producer.commit_transaction(TXN_OP_TIMEOUT)

        committed.read_until_values({b"after-txn"})
        assert committed.values() == {0: [b"before-txn", *open_values, b"after-txn"]}
        # the commit marker took offset 7
        assert committed.end_offsets() == {0: 8}
        assert uncommitted.end_offsets() == {0: 8}
    finally:
        committed.close()
        uncommitted.close()


def test_consume_transform_produce_exactly_once_with_aborted_batch(server_factory, topic_name):
    server = server_factory(extra_args=["--group-initial-rebalance-delay-ms", "0"]).start()
    partitions = 3
    in_topic, out_topic = f"{topic_name}-in", f"{topic_name}-out"
    group = f"group-{topic_name}"
    ck_create_topic(server.bootstrap, in_topic, partitions)
    ck_create_topic(server.bootstrap, out_topic, partitions)
    inputs = spread("input", 45, partitions)
    plain_produce(server.bootstrap, in_topic, inputs)
    in_counts = Counter(p for p, _ in inputs)

    def transform(value: bytes) -> bytes:
        return b"out:" + value

    def new_consumer() -> ck.Consumer:
        c = ck_consumer(server.bootstrap, **{
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
        })
        c.subscribe([in_topic])
        return c

    producer = txn_producer(server.bootstrap, f"txn-{topic_name}")
    producer.init_transactions(TXN_OP_TIMEOUT)

    def run_transaction(consumer: ck.Consumer, n: int, commit: bool) -> list[tuple[int, bytes]]:
        """Consume n input records, produce their transforms and commit their offsets in one
        transaction, then commit or abort it. Returns the input records processed."""
        batch: list[ck.Message] = []

        def fill():
            for msg in consumer.consume(num_messages=n - len(batch), timeout=0.2):
                if msg.error() is not None:
                    raise AssertionError(f"consume error: {msg.error()}")
                batch.append(msg)
            return len(batch) == n

        wait_until(fill, 20, interval=0.0, message=f"{n} input records")
        producer.begin_transaction()
        produce_txn(producer, out_topic, [(m.partition(), transform(m.value())) for m in batch])
        next_offsets: dict[int, int] = {}
        for m in batch:
            next_offsets[m.partition()] = max(next_offsets.get(m.partition(), 0), m.offset() + 1)
        producer.send_offsets_to_transaction(
            [ck.TopicPartition(in_topic, p, off) for p, off in sorted(next_offsets.items())],
            consumer.consumer_group_metadata(), TXN_OP_TIMEOUT)
        if commit:
            producer.commit_transaction(TXN_OP_TIMEOUT)
        else:
            producer.abort_transaction(TXN_OP_TIMEOUT)
        return [(m.partition(), m.value()) for m in batch]

    processed: list[tuple[int, bytes]] = []
    consumer = new_consumer()
    processed += run_transaction(consumer, 10, commit=True)
    aborted = run_transaction(consumer, 10, commit=False)
    # The application "crashes" after the abort: a new consumer of the group resumes from the
    # committed offsets, so the aborted batch is processed again.
    consumer.close()
    consumer = new_consumer()
    while len(processed) < len(inputs):
        processed += run_transaction(consumer, min(10, len(inputs) - len(processed)), commit=True)
    consumer.close()

    # Every input was processed exactly once by a committed transaction, in order per partition.
    assert per_partition(processed, partitions=partitions) == per_partition(inputs, partitions=partitions)

    marks = sentinels("out-end", partitions)
    plain_produce(server.bootstrap, out_topic, marks)
    expected_out = [(p, transform(v)) for p, v in inputs]
    committed_out = read_through_sentinels(server.bootstrap, out_topic, partitions, "read_committed", marks)
    assert committed_out == per_partition(expected_out, marks, partitions=partitions)

    # The aborted transaction's output is on the broker, only read_uncommitted sees it.
    uncommitted_out = read_through_sentinels(server.bootstrap, out_topic, partitions, "read_uncommitted", marks)
    assert Counter(v for vs in uncommitted_out.values() for v in vs) == Counter(
        [v for _, v in expected_out] + [transform(v) for _, v in aborted] + [v for _, v in marks])

    # The group's committed offsets are the input's end offsets.
    checker = ck_consumer(server.bootstrap, **{"group.id": group, "isolation.level": "read_committed"})
    try:
        offsets = checker.committed([ck.TopicPartition(in_topic, p) for p in range(partitions)],
                                    timeout=TXN_OP_TIMEOUT)
        assert {tp.partition: tp.offset for tp in offsets} == {p: in_counts[p] for p in range(partitions)}
    finally:
        checker.close()


def test_second_producer_with_same_transactional_id_fences_the_first(server, topic_name):
    partitions = 2
    ck_create_topic(server.bootstrap, topic_name, partitions)
    txn_id = f"txn-{topic_name}"

    zombie = txn_producer(server.bootstrap, txn_id)
    zombie.init_transactions(TXN_OP_TIMEOUT)
    zombie.begin_transaction()
    zombie_records = spread("zombie", 6, partitions)
    produce_txn(zombie, topic_name, zombie_records)

    successor = txn_producer(server.bootstrap, txn_id)
    successor.init_transactions(TXN_OP_TIMEOUT)  # fences the zombie, aborts its transaction
    successor.begin_transaction()
    successor_records = spread("successor", 6, partitions)
    produce_txn(successor, topic_name, successor_records)
    successor.commit_transaction(TXN_OP_TIMEOUT)

    err = kafka_error_of(zombie.commit_transaction, TXN_OP_TIMEOUT)
    assert err.fatal() or err.code() in FENCED_CODES, f"zombie commit failed with {err!r}"
    # The zombie can produce nothing more.
    err = kafka_error_of(zombie.produce, topic_name, b"zombie-after-fencing", b"zombie-after-fencing", 0)
    assert err.fatal() or err.code() in FENCED_CODES | {ck.KafkaError._FATAL}, f"zombie produce failed with {err!r}"

    marks = sentinels("end", partitions)
    plain_produce(server.bootstrap, topic_name, marks)
    committed = read_through_sentinels(server.bootstrap, topic_name, partitions, "read_committed", marks)
    assert committed == per_partition(successor_records, marks, partitions=partitions)
    # The zombie's records did reach the broker; its transaction was aborted.
    uncommitted = read_through_sentinels(server.bootstrap, topic_name, partitions, "read_uncommitted", marks)
    assert uncommitted == per_partition(zombie_records, successor_records, marks, partitions=partitions)


def test_transaction_past_its_timeout_is_aborted_and_cannot_commit(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 1)
    plain_produce(server.bootstrap, topic_name, [(0, b"before-txn")])

    producer = txn_producer(server.bootstrap, f"txn-{topic_name}", **{"transaction.timeout.ms": 2000})
    producer.init_transactions(TXN_OP_TIMEOUT)
    producer.begin_transaction()
    timed_out = spread("timed-out", 4, 1)
    produce_txn(producer, topic_name, timed_out)
    plain_produce(server.bootstrap, topic_name, [(0, b"after-txn")])

    committed = Reader(server.bootstrap, topic_name, 1, "read_committed")
    try:
        # "after-txn" becomes visible only once the broker has aborted the transaction (its
        # ABORT marker moves the last stable offset past it).
        committed.read_until_values({b"before-txn", b"after-txn"}, timeout=15)
        assert committed.values() == {0: [b"before-txn", b"after-txn"]}

        err = kafka_error_of(producer.commit_transaction, TXN_OP_TIMEOUT)
        # The client must know the transaction is lost (fenced, or abortable), not retry it.
        assert not err.retriable() and (err.fatal() or err.txn_requires_abort()), (
            f"commit after the timeout failed with {err!r}")

        plain_produce(server.bootstrap, topic_name, [(0, b"after-commit-attempt")])
        committed.read_until_values({b"after-commit-attempt"})
        assert committed.values() == {0: [b"before-txn", b"after-txn", b"after-commit-attempt"]}
    finally:
        committed.close()

    uncommitted = read_through_sentinels(server.bootstrap, topic_name, 1, "read_uncommitted",
                                         [(0, b"after-commit-attempt")])
    assert uncommitted == {0: [b"before-txn", *[v for _, v in timed_out], b"after-txn", b"after-commit-attempt"]}


def test_transaction_state_survives_kill9_restart(server, topic_name):
    partitions = 2
    ck_create_topic(server.bootstrap, topic_name, partitions)

    producer = txn_producer(server.bootstrap, f"txn-done-{topic_name}")
    producer.init_transactions(TXN_OP_TIMEOUT)
    committed_records = spread("committed", 6, partitions)
    producer.begin_transaction()
    produce_txn(producer, topic_name, committed_records)
    producer.commit_transaction(TXN_OP_TIMEOUT)
    aborted_records = spread("aborted", 6, partitions)
    producer.begin_transaction()
    produce_txn(producer, topic_name, aborted_records)
    producer.abort_transaction(TXN_OP_TIMEOUT)

    open_id = f"txn-open-{topic_name}"
    open_producer = txn_producer(server.bootstrap, open_id)
    open_producer.init_transactions(TXN_OP_TIMEOUT)
    open_producer.begin_transaction()
    open_records = spread("open", 6, partitions)
    open_first = first_offsets(produce_txn(open_producer, topic_name, open_records))
    assert sorted(open_first) == list(range(partitions))

    server.kill9()
    server.start()

    after = sentinels("after-restart", partitions)
    plain_produce(server.bootstrap, topic_name, after)

    uncommitted = read_through_sentinels(server.bootstrap, topic_name, partitions, "read_uncommitted", after)
    assert uncommitted == per_partition(committed_records, aborted_records, open_records, after,
                                        partitions=partitions)

    committed = Reader(server.bootstrap, topic_name, partitions, "read_committed")
    try:
        # The open transaction still holds the last stable offset at its first record.
        assert committed.end_offsets() == open_first
        committed.read_until_values({v for _, v in committed_records})
        committed.keep_fetching(QUIET_PERIOD_S)
        assert committed.values() == per_partition(committed_records, partitions=partitions)

        # A new producer with the open transaction's id aborts it.
        successor = txn_producer(server.bootstrap, open_id)
        successor.init_transactions(TXN_OP_TIMEOUT)

        committed.read_until_values({v for _, v in after})
        assert committed.values() == per_partition(committed_records, after, partitions=partitions)
    finally:
        committed.close()


# ---------------------------------------------------------------------------
# kafka-python
# ---------------------------------------------------------------------------


def kp_read_through_sentinels(bootstrap: str, topic: str, partitions: int, isolation: str,
                              marks: list[tuple[int, bytes]], timeout: float = 15.0) -> dict[int, list[bytes]]:
    from kafka import TopicPartition

    consumer = kp_consumer(bootstrap, isolation_level=isolation)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
        wanted = {v for _, v in marks}

        def step():
            for tp, records in consumer.poll(timeout_ms=200, max_records=1000).items():
                out[tp.partition] += [r.value for r in records]
            return wanted <= {v for vs in out.values() for v in vs}

        try:
            wait_until(step, timeout, interval=0.0, message=f"sentinels {sorted(wanted)}")
        except TimeoutError as e:
            raise AssertionError(f"{e}; read so far: {out}") from None
        return out
    finally:
        consumer.close()


def test_kafka_python_transactional_producer_commit_and_abort(server, topic_name):
    partitions = 2
    ck_create_topic(server.bootstrap, topic_name, partitions)
    producer = kp_producer(server.bootstrap, transactional_id=f"txn-{topic_name}")
    try:
        producer.init_transactions()

        def send_all(records):
            futures = [producer.send(topic_name, key=v, value=v, partition=p) for p, v in records]
            producer.flush(timeout=TXN_OP_TIMEOUT)
            return [(f.get(timeout=TXN_OP_TIMEOUT).partition, f.get(timeout=TXN_OP_TIMEOUT).offset)
                    for f in futures]

        first = spread("kp-first-committed", 8, partitions)
        producer.begin_transaction()
        send_all(first)
        producer.commit_transaction()

        aborted = spread("kp-aborted", 8, partitions)
        producer.begin_transaction()
        send_all(aborted)
        producer.abort_transaction()

        second = spread("kp-second-committed", 8, partitions)
        producer.begin_transaction()
        send_all(second)
        producer.commit_transaction()
    finally:
        producer.close(timeout=10)

    marks = sentinels("kp-end", partitions)
    kp_produce(server.bootstrap, topic_name, [Msg(p, v, v) for p, v in marks])

    committed = kp_read_through_sentinels(server.bootstrap, topic_name, partitions, "read_committed", marks)
    assert committed == per_partition(first, second, marks, partitions=partitions)
    uncommitted = kp_read_through_sentinels(server.bootstrap, topic_name, partitions, "read_uncommitted", marks)
    assert uncommitted == per_partition(first, aborted, second, marks, partitions=partitions)


def test_describe_and_list_transactions_show_state_and_partitions(server, topic_name):
    """DescribeTransactions / ListTransactions (kafka-python's admin client): an open
    transaction is Ongoing with its partitions, then CompleteCommit with none."""
    from kafka.admin import KafkaAdminClient

    partitions = 2
    ck_create_topic(server.bootstrap, topic_name, partitions)
    txn_id = f"txn-describe-{topic_name}"
    producer = txn_producer(server.bootstrap, txn_id)
    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap)
    try:
        producer.init_transactions(TXN_OP_TIMEOUT)
        producer.begin_transaction()
        produce_txn(producer, topic_name, spread("described", 4, partitions))

        ongoing = admin.describe_transactions([txn_id])[txn_id]
        assert ongoing.state.value == "Ongoing"
        assert ongoing.topic_partitions == {(topic_name, p) for p in range(partitions)}
        listed = admin.list_transactions(state_filters=["Ongoing"])  # {broker id: [listing]}
        assert txn_id in {t.transactional_id for ts in listed.values() for t in ts}, listed

        producer.commit_transaction(TXN_OP_TIMEOUT)
        done = admin.describe_transactions([txn_id])[txn_id]
        assert (done.state.value, done.topic_partitions) == ("CompleteCommit", set())
        assert (done.producer_id, done.producer_epoch) == (ongoing.producer_id, ongoing.producer_epoch)
        still_ongoing = admin.list_transactions(state_filters=["Ongoing"])
        assert txn_id not in {t.transactional_id for ts in still_ongoing.values() for t in ts}, still_ongoing
        committed = admin.list_transactions(state_filters=["CompleteCommit"])
        assert txn_id in {t.transactional_id for ts in committed.values() for t in ts}, committed
    finally:
        admin.close()


def produce_raw_transactional_batch(bootstrap: str, transactional_id: str, topic: str, partition: int,
                                    producer: tuple[int, int], base_sequence: int, value: bytes) -> int:
    """Sends one transactional record batch in a Produce v7 request (as a producer whose
    request was delayed would) and returns the partition's error code."""
    import struct

    from kafka.protocol.producer.produce import ProduceRequest
    from kafka.record.default_records import DefaultRecordBatchBuilder

    from kafka_wire import connect, recv_frame

    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=True,
                                        producer_id=producer[0], producer_epoch=producer[1],
                                        base_sequence=base_sequence, batch_size=1 << 20)
    builder.append(0, timestamp=int(time.time() * 1000), key=value, value=value, headers=[])
    records = bytes(builder.build())
    req = ProduceRequest(transactional_id=transactional_id, acks=-1, timeout_ms=10_000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.TopicProduceData.PartitionProduceData(index=partition, records=records)])])
    req.with_header(correlation_id=11, client_id="late-producer")
    with connect(bootstrap) as s:
        s.sendall(req.encode(version=7, header=True, framed=True))
        resp = recv_frame(s, timeout=15)
    # correlation id, [topic: name, [partition: index, error_code, ...]]
    (name_len,) = struct.unpack_from(">h", resp, 8)
    at = 10 + name_len + 4  # past the topic name and the partition count
    _, error = struct.unpack_from(">ih", resp, at)
    return error


def test_a_late_batch_of_an_ended_transaction_is_refused_and_holds_nothing_back(server, topic_name):
    """KIP-890 part 1: a transactional batch that arrives after its transaction ended (a delayed
    or retried produce) gets INVALID_TXN_STATE instead of opening a transaction nobody will end,
    which would hold every read_committed consumer of the partition back for good."""
    from kafka.admin import KafkaAdminClient

    ck_create_topic(server.bootstrap, topic_name, 1)
    txn_id = f"txn-late-{topic_name}"
    producer = txn_producer(server.bootstrap, txn_id)
    producer.init_transactions(TXN_OP_TIMEOUT)
    producer.begin_transaction()
    produce_txn(producer, topic_name, [(0, b"in-time")])
    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap)
    try:
        open_txn = admin.describe_transactions([txn_id])[txn_id]
    finally:
        admin.close()
    ids = (open_txn.producer_id, open_txn.producer_epoch)
    producer.commit_transaction(TXN_OP_TIMEOUT)

    # The producer's next sequence number, so only the transaction check can refuse it.
    error = produce_raw_transactional_batch(server.bootstrap, txn_id, topic_name, 0, ids, 1, b"late")
    assert error == 48, f"a late transactional batch got error {error}, expected INVALID_TXN_STATE (48)"

    marks = sentinels("late-end", 1)
    plain_produce(server.bootstrap, topic_name, marks)
    reader = Reader(server.bootstrap, topic_name, 1, "read_committed")
    try:
        reader.read_until_values({v for _, v in marks})
        assert reader.values() == {0: [b"in-time", marks[0][1]]}
        uncommitted = Reader(server.bootstrap, topic_name, 1, "read_uncommitted")
        try:
            assert reader.end_offsets() == uncommitted.end_offsets(), "the last stable offset is held back"
        finally:
            uncommitted.close()
    finally:
        reader.close()


def test_a_fenced_producers_batch_to_a_new_partition_gets_invalid_producer_epoch(server, topic_name):
    """A zombie (its epoch bumped by a new producer's InitProducerId) that sends a
    transactional batch to a partition it never wrote to is refused as a fenced producer,
    INVALID_PRODUCER_EPOCH, which clients treat as fatal (librdkafka 0103 do_test_fenced_txn),
    not INVALID_TXN_STATE, which they would abort and retry."""
    from kafka.admin import KafkaAdminClient

    ck_create_topic(server.bootstrap, topic_name, 2)
    txn_id = f"txn-zombie-{topic_name}"
    zombie = txn_producer(server.bootstrap, txn_id)
    zombie.init_transactions(TXN_OP_TIMEOUT)
    zombie.begin_transaction()
    produce_txn(zombie, topic_name, [(0, b"before-fence")])
    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap)
    try:
        old = admin.describe_transactions([txn_id])[txn_id]
        successor = txn_producer(server.bootstrap, txn_id)
        successor.init_transactions(TXN_OP_TIMEOUT)
        new = admin.describe_transactions([txn_id])[txn_id]
    finally:
        admin.close()
    assert (new.producer_id, new.producer_epoch) != (old.producer_id, old.producer_epoch)
    error = produce_raw_transactional_batch(server.bootstrap, txn_id, topic_name, 1,
                                            (old.producer_id, old.producer_epoch), 0, b"zombie")
    assert error == 47, f"a fenced producer's batch got error {error}, expected INVALID_PRODUCER_EPOCH (47)"


def test_offsets_sent_with_only_a_group_id_commit_into_a_group_with_live_members(server_factory, topic_name):
    """TxnOffsetCommit without member id and generation (clients before KIP-447: aiokafka,
    kafkajs, Java's send_offsets_to_transaction(offsets, group_id)) is accepted for a group that
    has live members, as Kafka accepts it, and the offsets take effect at the commit."""
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    server = server_factory(extra_args=["--group-initial-rebalance-delay-ms", "0"])
    server.start()
    ck_create_topic(server.bootstrap, topic_name, 1)
    group = f"g-{topic_name}"
    member = ck_consumer(server.bootstrap, **{"group.id": group, "session.timeout.ms": 30000})
    producer = kp_producer(server.bootstrap, transactional_id=f"txn-{topic_name}")
    try:
        member.subscribe([topic_name])
        wait_until(lambda: member.poll(0.2) is None and bool(member.assignment()), timeout=20,
                   message="the group member to be assigned its partition")
        producer.init_transactions()
        producer.begin_transaction()
        producer.send_offsets_to_transaction({KTP(topic_name, 0): OffsetAndMetadata(7, "", -1)}, group)
        producer.commit_transaction()
        committed = member.committed([ck.TopicPartition(topic_name, 0)], timeout=10)
        assert committed[0].offset == 7, committed
    finally:
        producer.close(timeout=10)
        member.close()
