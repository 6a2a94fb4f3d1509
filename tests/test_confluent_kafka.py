"""confluent-kafka (librdkafka) against a real chronik-server."""

from __future__ import annotations

import threading
import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic, ResourceType

from clients import (
    assert_read_matches,
    ck_admin,
    ck_consumer,
    ck_create_topic,
    ck_produce,
    ck_producer,
    ck_read_all,
    ck_wait_topic,
    make_messages,
)

PARTITIONS = 4


def kafka_error_code(excinfo) -> int:
    """The Kafka error code carried by a KafkaException raised from an admin future."""
    err = excinfo.value.args[0]
    assert isinstance(err, ck.KafkaError), f"unexpected exception payload {err!r}"
    return err.code()


# "default": librdkafka's default producer config (enable.idempotence=false); "idempotent":
# enable.idempotence=true (InitProducerId, producer id/epoch/sequence in every batch).
IDEMPOTENCE = {"default": {}, "idempotent": {"enable.idempotence": True}}


@pytest.mark.parametrize("idempotence", list(IDEMPOTENCE))
@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_10k_over_4_partitions_read_back_exact(server, topic_name, compression, idempotence):
    ck_create_topic(server.bootstrap, topic_name, PARTITIONS)
    msgs = make_messages(10_000, PARTITIONS, f"ck-{compression}-{idempotence}")

    acked = ck_produce(server.bootstrap, topic_name, msgs, acks="all",
                       **{"compression.type": compression}, **IDEMPOTENCE[idempotence])
    read = ck_read_all(server.bootstrap, topic_name, PARTITIONS)

    assert_read_matches(msgs, read, acked)


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks_modes_all_messages_readable(server, topic_name, acks):
    """Each acks mode on librdkafka's otherwise default producer config."""
    ck_create_topic(server.bootstrap, topic_name, PARTITIONS)
    msgs = make_messages(3_000, PARTITIONS, f"ck-acks{acks}")

    acked = ck_produce(server.bootstrap, topic_name, msgs, acks=acks)
    read = ck_read_all(server.bootstrap, topic_name, PARTITIONS, expected_total=len(msgs))

    # With acks=0 the client never learns offsets, so only compare contents/order.
    assert_read_matches(msgs, read, None if acks == "0" else acked)


def test_admin_create_list_describe_alter_delete_topic(server, topic_name):
    admin = ck_admin(server.bootstrap)
    fs = admin.create_topics(
        [NewTopic(topic_name, num_partitions=3, replication_factor=1,
                  config={"retention.ms": "3600000"})],
        operation_timeout=15, request_timeout=15)
    fs[topic_name].result(timeout=30)

    md = admin.list_topics(timeout=10)
    assert topic_name in md.topics
    ck_wait_topic(admin, topic_name, 3)
    assert sorted(admin.list_topics(topic=topic_name, timeout=10).topics[topic_name].partitions) == [0, 1, 2]

    resource = ConfigResource(ResourceType.TOPIC, topic_name)
    entries = admin.describe_configs([resource], request_timeout=15)[resource].result(timeout=30)
    assert entries["retention.ms"].value == "3600000"

    fs = admin.create_partitions([NewPartitions(topic_name, 6)], operation_timeout=15, request_timeout=15)
    fs[topic_name].result(timeout=30)
    ck_wait_topic(admin, topic_name, 6)

    # The new partitions are usable.
    msgs = make_messages(12, 6, "ck-newparts")
    acked = ck_produce(server.bootstrap, topic_name, msgs, acks="all")
    assert sorted({p for p, _ in acked}) == [0, 1, 2, 3, 4, 5]

    fs = admin.delete_topics([topic_name], operation_timeout=15, request_timeout=15)
    fs[topic_name].result(timeout=30)
    deadline = time.monotonic() + 15
    while topic_name in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, "deleted topic still listed"
        time.sleep(0.1)


def test_admin_create_partitions_cannot_shrink(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 3)
    admin = ck_admin(server.bootstrap)
    fs = admin.create_partitions([NewPartitions(topic_name, 2)], request_timeout=15)
    with pytest.raises(ck.KafkaException) as excinfo:
        fs[topic_name].result(timeout=30)
    assert kafka_error_code(excinfo) == ck.KafkaError.INVALID_PARTITIONS
    assert len(admin.list_topics(topic=topic_name, timeout=10).topics[topic_name].partitions) == 3


def test_admin_duplicate_create_is_topic_already_exists(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 2)
    admin = ck_admin(server.bootstrap)
    fs = admin.create_topics([NewTopic(topic_name, num_partitions=5, replication_factor=1)],
                             request_timeout=15)
    with pytest.raises(ck.KafkaException) as excinfo:
        fs[topic_name].result(timeout=30)
    assert kafka_error_code(excinfo) == ck.KafkaError.TOPIC_ALREADY_EXISTS
    # the original topic is untouched
    assert len(admin.list_topics(topic=topic_name, timeout=10).topics[topic_name].partitions) == 2


@pytest.mark.parametrize("bad_name", ["bad topic!", "a" * 250, ".."])
def test_admin_invalid_topic_name_is_invalid_topic_exception(server, bad_name):
    admin = ck_admin(server.bootstrap)
    fs = admin.create_topics([NewTopic(bad_name, num_partitions=1, replication_factor=1)],
                             request_timeout=15)
    with pytest.raises(ck.KafkaException) as excinfo:
        fs[bad_name].result(timeout=30)
    # librdkafka's name for INVALID_TOPIC_EXCEPTION (17)
    assert kafka_error_code(excinfo) == ck.KafkaError.TOPIC_EXCEPTION
    assert bad_name not in admin.list_topics(timeout=10).topics


def test_admin_describe_cluster_shows_single_node(server):
    admin = ck_admin(server.bootstrap)
    result = admin.describe_cluster(request_timeout=15).result(timeout=30)
    assert [(n.id, n.host, n.port) for n in result.nodes] == [(1, "127.0.0.1", server.kafka_port)]
    assert result.controller is not None and result.controller.id == 1
    assert result.cluster_id


def test_metadata_lists_single_broker_and_topics(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, PARTITIONS)
    md = ck_admin(server.bootstrap).list_topics(timeout=10)
    assert [(b.id, b.host, b.port) for b in md.brokers.values()] == [(1, "127.0.0.1", server.kafka_port)]
    assert md.controller_id == 1
    t = md.topics[topic_name]
    assert t.error is None
    assert sorted(t.partitions) == list(range(PARTITIONS))
    for p in t.partitions.values():
        assert p.leader == 1 and p.replicas == [1] and p.isrs == [1]


def test_long_poll_fetch_returns_promptly_when_data_arrives(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 1)
    consumer = ck_consumer(server.bootstrap, **{"fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
    producer = ck_producer(server.bootstrap, acks="1", **{"linger.ms": 0})
    try:
        tp = ck.TopicPartition(topic_name, 0)
        # Connect and learn the (empty) log end before starting the clock.
        assert consumer.get_watermark_offsets(tp, timeout=10, cached=False) == (0, 0)
        consumer.assign([ck.TopicPartition(topic_name, 0, 0)])

        sent_at = {}
        delivered = []

        def produce_later():
            sent_at["t"] = time.monotonic()
            producer.produce(topic_name, value=b"wake-up", partition=0,
                             on_delivery=lambda err, msg: delivered.append(err))
            producer.flush(10)

        timer = threading.Timer(0.5, produce_later)
        timer.start()
        got = None
        deadline = time.monotonic() + 15
        while got is None and time.monotonic() < deadline:
            msg = consumer.poll(0.05)
            if msg is not None and msg.error() is None:
                got = msg
            elif msg is not None and msg.topic() == topic_name:
                raise AssertionError(f"fetch error: {msg.error()}")
        received_at = time.monotonic()
        timer.join()

        assert delivered == [None]
        assert got is not None and got.value() == b"wake-up"
        elapsed = received_at - sent_at["t"]
        assert elapsed < 3.0, f"message took {elapsed:.2f}s to arrive with fetch.wait.max.ms=5000"
    finally:
        consumer.close()
