"""Log compaction (cleanup.policy=compact) on the real binary: the latest value of every key
survives with its original offset, older versions are removed in the background, and a consumer
reading the compacted log sees offsets in order."""

from __future__ import annotations

import confluent_kafka as ck

from clients import ck_create_topic, ck_read_all
from harness import wait_until

KEYS = 20
ROUNDS = 30


def test_compaction_keeps_the_latest_value_per_key(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 1,
                    {"cleanup.policy": "compact", "segment.bytes": "2048"})
    p = ck.Producer({"bootstrap.servers": server.bootstrap, "linger.ms": 0, "acks": "all"})
    latest: dict[bytes, tuple[int, bytes]] = {}

    def record(err, msg):
        assert err is None, err
        latest[msg.key()] = (msg.offset(), msg.value())

    for r in range(ROUNDS):
        for k in range(KEYS):
            p.produce(topic_name, key=f"key-{k}".encode(), value=f"round-{r}-{k}".encode() * 4,
                      partition=0, on_delivery=record)
        p.flush(30)
    total = KEYS * ROUNDS

    def compacted():
        read = ck_read_all(server.bootstrap, topic_name, 1)[0]
        return len(read) < total / 2, read

    wait_until(lambda: compacted()[0], timeout=60, interval=1.0,
               message="the background cleaner removes old versions")
    read = compacted()[1]
    offsets = [o for o, _, _ in read]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    by_key = {}
    for o, k, v in read:
        by_key[k] = (o, v)
    assert by_key == latest, "every key's latest value is kept at its original offset"
    assert "compacted segment" in server.log_text()


def test_compacted_topic_refuses_records_without_a_key(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 1, {"cleanup.policy": "compact"})
    p = ck.Producer({"bootstrap.servers": server.bootstrap, "linger.ms": 0,
                     "message.timeout.ms": 5000, "retries": 0})
    results = []
    # Separate batches: Kafka refuses a whole batch that holds a keyless record.
    p.produce(topic_name, value=b"no key", partition=0, on_delivery=lambda e, m: results.append(e))
    p.flush(15)
    p.produce(topic_name, key=b"k", value=b"keyed", partition=0, on_delivery=lambda e, m: results.append(e))
    p.flush(15)
    assert len(results) == 2
    assert results[0] is not None and results[0].code() == ck.KafkaError.INVALID_RECORD, results[0]
    assert results[1] is None
    read = ck_read_all(server.bootstrap, topic_name, 1)[0]
    assert [(k, v) for _, k, v in read] == [(b"k", b"keyed")]


def test_a_batch_with_keyless_records_names_them_and_the_others_fail_with_it(server, topic_name):
    """KIP-467: the whole batch is refused with INVALID_RECORD and record_errors naming each
    keyless record, so the client fails those with INVALID_RECORD and the batch's other
    records with _INVALID_DIFFERENT_RECORD."""
    ck_create_topic(server.bootstrap, topic_name, 1, {"cleanup.policy": "compact"})
    p = ck.Producer({"bootstrap.servers": server.bootstrap, "linger.ms": 1000,
                     "batch.num.messages": 10, "message.timeout.ms": 5000, "retries": 0})
    results: dict[bytes, int | None] = {}
    # Warm up (connection and metadata), so the ten records below leave as one batch: a first
    # record produced before the partition's leader is known can leave on its own.
    p.produce(topic_name, key=b"k", value=b"before", partition=0)
    assert p.flush(15) == 0
    keyless = {2, 5, 9}
    for i in range(10):
        value = f"v{i}".encode()
        key = None if i in keyless else f"k{i}".encode()
        p.produce(topic_name, key=key, value=value, partition=0,
                  on_delivery=lambda e, m: results.__setitem__(m.value(), e.code() if e else None))
    assert p.flush(15) == 0
    expected = {f"v{i}".encode(): (ck.KafkaError.INVALID_RECORD if i in keyless
                                   else ck.KafkaError._INVALID_DIFFERENT_RECORD) for i in range(10)}
    assert results == expected
    p.produce(topic_name, key=b"k", value=b"after", partition=0)
    assert p.flush(15) == 0
    read = ck_read_all(server.bootstrap, topic_name, 1)[0]
    assert [(k, v) for _, k, v in read] == [(b"k", b"before"), (b"k", b"after")], (
        "nothing of the refused batch is stored")
