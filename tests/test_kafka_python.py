"""kafka-python (pure Python client) against a real chronik-server."""

from __future__ import annotations

import threading
import time

import kafka.errors as Errors
import pytest
from kafka import TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from clients import (
    assert_read_matches,
    kp_admin,
    kp_consumer,
    kp_produce,
    kp_producer,
    kp_read_all,
    make_messages,
)

PARTITIONS = 4


def kp_create_topic(bootstrap: str, name: str, partitions: int, configs: dict | None = None) -> None:
    admin = kp_admin(bootstrap)
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}},
            timeout_ms=15000,
            wait_for_metadata=True,
        )
    finally:
        admin.close()


def partition_count(admin, name: str) -> int:
    [t] = admin.describe_topics([name])
    assert t["error_code"] == 0, f"describe {name}: error {t['error_code']}"
    return len(t["partitions"])


# "default": kafka-python's default producer config, which is idempotent (KIP-679);
# "non-idempotent": enable_idempotence=False, the plain at-least-once producer.
IDEMPOTENCE = {"default": {}, "non-idempotent": {"enable_idempotence": False}}


@pytest.mark.parametrize("idempotence", list(IDEMPOTENCE))
@pytest.mark.parametrize("compression", [None, "gzip", "snappy", "lz4", "zstd"])
def test_produce_10k_over_4_partitions_read_back_exact(server, topic_name, compression, idempotence):
    kp_create_topic(server.bootstrap, topic_name, PARTITIONS)
    msgs = make_messages(10_000, PARTITIONS, f"kp-{compression or 'none'}-{idempotence}")

    acked = kp_produce(server.bootstrap, topic_name, msgs, acks="all", compression_type=compression,
                       **IDEMPOTENCE[idempotence])
    read = kp_read_all(server.bootstrap, topic_name, PARTITIONS)

    assert_read_matches(msgs, read, acked)


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_acks_modes_all_messages_readable(server, topic_name, acks):
    """Each acks mode on kafka-python's otherwise default producer config (an explicit acks=0/1
    turns its default idempotence off; acks="all" keeps it on)."""
    kp_create_topic(server.bootstrap, topic_name, PARTITIONS)
    msgs = make_messages(2_000, PARTITIONS, f"kp-acks{acks}")

    acked = kp_produce(server.bootstrap, topic_name, msgs, acks=acks)
    # acks=0: the producer learns nothing, so wait (bounded) for the log to fill up.
    read = kp_read_all(server.bootstrap, topic_name, PARTITIONS, expected_total=len(msgs))

    assert_read_matches(msgs, read, None if acks == 0 else acked)


def test_admin_create_describe_alter_delete_topic(server, topic_name):
    admin = kp_admin(server.bootstrap)
    try:
        admin.create_topics(
            {topic_name: {"num_partitions": 3, "replication_factor": 1,
                          "configs": {"retention.ms": "3600000"}}},
            timeout_ms=15000,
            wait_for_metadata=True,
        )
        assert topic_name in admin.list_topics()
        assert partition_count(admin, topic_name) == 3

        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic_name)], config_filter="all"
        )
        topic_configs = configs["topic"][topic_name]
        assert topic_configs["retention.ms"]["value"] == "3600000"

        admin.create_partitions({topic_name: 5})
        deadline = time.monotonic() + 15
        while partition_count(admin, topic_name) != 5:
            assert time.monotonic() < deadline, "partition count never became 5"
            time.sleep(0.1)

        # The new partitions are usable.
        msgs = make_messages(10, 5, "kp-newparts")
        acked = kp_produce(server.bootstrap, topic_name, msgs, acks="all")
        assert sorted({p for p, _ in acked}) == [0, 1, 2, 3, 4]

        admin.delete_topics([topic_name], timeout_ms=15000)
        deadline = time.monotonic() + 15
        while topic_name in admin.list_topics():
            assert time.monotonic() < deadline, "deleted topic still listed"
            time.sleep(0.1)
    finally:
        admin.close()


def test_admin_duplicate_create_is_topic_already_exists(server, topic_name):
    admin = kp_admin(server.bootstrap)
    try:
        spec = {topic_name: {"num_partitions": 1, "replication_factor": 1}}
        admin.create_topics(spec, timeout_ms=15000)
        with pytest.raises(Errors.TopicAlreadyExistsError):
            admin.create_topics(spec, timeout_ms=15000)
        # the original topic is untouched
        assert partition_count(admin, topic_name) == 1
    finally:
        admin.close()


@pytest.mark.parametrize("bad_name", ["bad topic!", "a" * 250, "..", ""])
def test_admin_invalid_topic_name_is_invalid_topic_exception(server, bad_name):
    admin = kp_admin(server.bootstrap)
    try:
        with pytest.raises(Errors.InvalidTopicError):
            admin.create_topics({bad_name: {"num_partitions": 1, "replication_factor": 1}},
                                timeout_ms=15000)
        assert bad_name not in admin.list_topics()
    finally:
        admin.close()


def test_admin_describe_cluster_shows_single_node(server):
    admin = kp_admin(server.bootstrap)
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    brokers = cluster["brokers"]
    assert [b["broker_id"] for b in brokers] == [1]
    assert (brokers[0]["host"], brokers[0]["port"]) == ("127.0.0.1", server.kafka_port)
    assert cluster["controller_id"] == 1
    assert cluster["cluster_id"]


def test_long_poll_fetch_returns_promptly_when_data_arrives(server, topic_name):
    kp_create_topic(server.bootstrap, topic_name, 1)
    tp = TopicPartition(topic_name, 0)
    consumer = kp_consumer(server.bootstrap, fetch_max_wait_ms=5000, fetch_min_bytes=1)
    producer = kp_producer(server.bootstrap, acks=1, linger_ms=0)
    try:
        consumer.assign([tp])
        consumer.seek_to_end(tp)
        assert consumer.position(tp, timeout_ms=10000) == 0
        # Let the consumer park a fetch at the end of the (empty) log.
        assert consumer.poll(timeout_ms=200) == {}

        sent_at = {}

        def produce_later():
            sent_at["t"] = time.monotonic()
            producer.send(topic_name, value=b"wake-up", partition=0).get(timeout=10)

        timer = threading.Timer(0.5, produce_later)
        timer.start()
        got = []
        deadline = time.monotonic() + 15
        while not got and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(records)
        received_at = time.monotonic()
        timer.join()

        assert [r.value for r in got] == [b"wake-up"]
        elapsed = received_at - sent_at["t"]
        assert elapsed < 3.0, f"message took {elapsed:.2f}s to arrive with fetch max wait 5s"
    finally:
        consumer.close()
        producer.close(timeout=10)
