"""Dynamic broker configs and group configs, black-box (Kafka 4.x semantics).

AlterConfigs / IncrementalAlterConfigs on a BROKER resource (name "" = the cluster-wide default,
or a broker id) and on a GROUP resource, DescribeConfigs of TOPIC / BROKER / GROUP resources.

Covered:
  1. a cluster-wide log.message.timestamp.type=LogAppendTime changes what a consumer sees on a
     topic without an override (LOG_APPEND_TIME, the broker's clock) and is described with source
     DYNAMIC_DEFAULT_BROKER_CONFIG; a topic override keeps CreateTime; DELETE restores CreateTime;
  2. a per-broker value wins over the cluster-wide one (source DYNAMIC_BROKER_CONFIG, observed on
     produced records too); DescribeConfigs BROKER "" lists the cluster-wide defaults only;
  3. static names and invalid values of a broker resource are INVALID_REQUEST, as Kafka's
     ConfigAdminManager answers ("Invalid config value for resource ..."), and so is a broker
     name other than "" and the receiving broker's id; none of them changes the stored configs;
     an unknown name is a custom config (stored, described, used by nothing), as in Kafka;
     concurrent changes of one resource are all kept; validate_only changes nothing;
  4. group configs: defaults, set, out of range and unknown names refused, DELETE back to default;
  5. APPEND / SUBTRACT on the list config log.cleanup.policy;
  6. kill -9 right after the acknowledgements, restart on the same data dir: every dynamic config
     is still there and still applied to produced records;
  7. three nodes: a cluster-wide config set through one node is described by every other node
     and applied by the partition leader, a group config too, and both survive a node's kill -9.

Clients: confluent-kafka's AdminClient for TOPIC, BROKER "<id>" and GROUP resources. librdkafka
refuses a BROKER resource with an empty name on the client side ("Invalid ConfigResource"), and
the broker names that must be refused cannot be routed by it, so those requests go over the raw
wire (DescribeConfigs v1, AlterConfigs v0, IncrementalAlterConfigs v0: small, non-flexible).
"""

from __future__ import annotations

import itertools
import struct
import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from clients import ck_admin, ck_create_topic
from cluster_harness import Cluster
from harness import wait_until
from kafka_wire import Reader, connect, frame, kstring, recv_frame, request_header

# Kafka error codes
NONE = 0
INVALID_CONFIG = 40
INVALID_REQUEST = 42

# Config sources (DescribeConfigs v1+), Kafka's numbering
TOPIC_CONFIG = ConfigSource.DYNAMIC_TOPIC_CONFIG.value            # 1
DYNAMIC_BROKER = ConfigSource.DYNAMIC_BROKER_CONFIG.value         # 2
DYNAMIC_DEFAULT = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value  # 3
DEFAULT = ConfigSource.DEFAULT_CONFIG.value                       # 5
GROUP_CONFIG = ConfigSource.GROUP_CONFIG.value                    # 8

# Raw wire resource types (ConfigResource.Type)
RT_TOPIC, RT_BROKER, RT_GROUP = 2, 4, 32
# IncrementalAlterConfigs operations
SET, DELETE, APPEND, SUBTRACT = (op.value for op in (
    AlterConfigOpType.SET, AlterConfigOpType.DELETE, AlterConfigOpType.APPEND,
    AlterConfigOpType.SUBTRACT))

# A producer-chosen timestamp far in the past: a record that still carries it after the broker
# appended it kept CreateTime; one stamped by the broker (LogAppendTime) carries "now".
OLD_TS = 1_500_000_000_000

GROUP_DEFAULTS = {
    "consumer.session.timeout.ms": "45000",
    "consumer.heartbeat.interval.ms": "5000",
    "share.session.timeout.ms": "45000",
    "share.heartbeat.interval.ms": "5000",
    "share.record.lock.duration.ms": "30000",
    "share.auto.offset.reset": "latest",
    "share.isolation.level": "read_uncommitted",
    "streams.session.timeout.ms": "45000",
    "streams.heartbeat.interval.ms": "5000",
    "streams.num.standby.replicas": "0",
}


# ---------------------------------------------------------------------------
# raw wire: DescribeConfigs v1, AlterConfigs v0, IncrementalAlterConfigs v0
# ---------------------------------------------------------------------------

_correlation = itertools.count(1)


def _call(bootstrap: str, api_key: int, version: int, body: bytes) -> Reader:
    corr = next(_correlation)
    with connect(bootstrap) as s:
        s.sendall(frame(request_header(api_key, version, corr) + body))
        r = Reader(recv_frame(s))
    assert r.take(">i") == corr, "correlation id mismatch"
    return r


def _array(items: list[bytes]) -> bytes:
    return struct.pack(">i", len(items)) + b"".join(items)


def raw_describe(bootstrap: str, rtype: int, name: str) -> tuple[int, dict[str, tuple[str | None, int]]]:
    """DescribeConfigs v1 of one resource (all keys): (error code, {name: (value, source)})."""
    body = _array([struct.pack(">b", rtype) + kstring(name) + struct.pack(">i", -1)])
    body += struct.pack(">b", 0)  # include_synonyms
    r = _call(bootstrap, 32, 1, body)
    r.take(">i")  # throttle_time_ms
    assert r.take(">i") == 1, "one result per resource"
    err, _msg, rt, rn = r.take(">h"), r.string(), r.take(">b"), r.string()
    assert (rt, rn) == (rtype, name), f"result for {(rt, rn)}, asked for {(rtype, name)}"
    configs = {}
    for _ in range(r.take(">i")):
        cname, value = r.string(), r.string()
        _read_only, source, _sensitive = r.take(">bbb")
        for _ in range(r.take(">i")):  # synonyms (none asked for)
            r.string(), r.string(), r.take(">b")
        configs[cname] = (value, source)
    return err, configs


def _alter_results(r: Reader) -> list[tuple[int, str | None]]:
    r.take(">i")  # throttle_time_ms
    out = []
    for _ in range(r.take(">i")):
        err, msg = r.take(">h"), r.string()
        r.take(">b"), r.string()  # resource type and name
        out.append((err, msg))
    return out


def raw_incremental_alter(bootstrap: str, rtype: int, name: str,
                          ops: list[tuple[str, int, str | None]],
                          validate_only: bool = False) -> tuple[int, str | None]:
    """IncrementalAlterConfigs v0 of one resource; ops are (config, operation, value)."""
    resource = struct.pack(">b", rtype) + kstring(name) + _array(
        [kstring(c) + struct.pack(">b", op) + kstring(v) for c, op, v in ops])
    body = _array([resource]) + struct.pack(">b", validate_only)
    (result,) = _alter_results(_call(bootstrap, 44, 0, body))
    return result


def raw_alter(bootstrap: str, rtype: int, name: str, configs: dict[str, str | None],
              validate_only: bool = False) -> tuple[int, str | None]:
    """Legacy AlterConfigs v0 of one resource (replaces all of its dynamic configs)."""
    resource = struct.pack(">b", rtype) + kstring(name) + _array(
        [kstring(c) + kstring(v) for c, v in configs.items()])
    body = _array([resource]) + struct.pack(">b", validate_only)
    (result,) = _alter_results(_call(bootstrap, 33, 0, body))
    return result


def set_cluster_default(bootstrap: str, **configs: str) -> None:
    """SET broker configs cluster-wide (BROKER ""); names with '_' for '.'."""
    ops = [(k.replace("_", "."), SET, v) for k, v in configs.items()]
    assert raw_incremental_alter(bootstrap, RT_BROKER, "", ops) == (NONE, None)


def cluster_defaults(bootstrap: str) -> dict[str, tuple[str | None, int]]:
    err, configs = raw_describe(bootstrap, RT_BROKER, "")
    assert err == NONE, f"DescribeConfigs BROKER '': error {err}"
    return configs


# ---------------------------------------------------------------------------
# confluent-kafka helpers
# ---------------------------------------------------------------------------


def ck_alter(admin, rtype: ResourceType, name: str,
             ops: list[tuple[str, AlterConfigOpType, str | None]]) -> None:
    """IncrementalAlterConfigs of one resource through confluent-kafka; raises KafkaException."""
    res = ConfigResource(rtype, name, incremental_configs=[
        ConfigEntry(c, v, incremental_operation=op) for c, op, v in ops])
    admin.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=30)


def ck_alter_error(admin, rtype: ResourceType, name: str, ops) -> int:
    """The Kafka error code an IncrementalAlterConfigs that must fail fails with."""
    with pytest.raises(ck.KafkaException) as excinfo:
        ck_alter(admin, rtype, name, ops)
    return excinfo.value.args[0].code()


def ck_describe(admin, rtype: ResourceType, name: str) -> dict[str, tuple[str | None, int]]:
    res = ConfigResource(rtype, name)
    entries = admin.describe_configs([res], request_timeout=15)[res].result(timeout=30)
    return {k: (e.value, e.source) for k, e in entries.items()}


def dynamic_only(configs: dict[str, tuple[str | None, int]]) -> dict[str, tuple[str | None, int]]:
    return {k: v for k, v in configs.items() if v[1] in (DYNAMIC_BROKER, DYNAMIC_DEFAULT)}


# ---------------------------------------------------------------------------
# observing timestamps
# ---------------------------------------------------------------------------


def produce_old_timestamp(bootstrap: str, topic: str, value: bytes) -> int:
    """Produce one record to partition 0 with timestamp OLD_TS (acks=all); returns its offset."""
    producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all",
                            "message.timeout.ms": 30000})
    reports = []
    producer.produce(topic, value=value, partition=0, timestamp=OLD_TS,
                     on_delivery=lambda err, msg: reports.append((err, msg)))
    assert producer.flush(30) == 0, "record not delivered within 30 s"
    ((err, msg),) = reports
    assert err is None, f"delivery of {value!r} failed: {err}"
    return msg.offset()


def read_timestamp(bootstrap: str, topic: str, offset: int, value: bytes) -> tuple[int, int]:
    """(timestamp type, timestamp) of the record at topic[0]@offset, read by a consumer."""
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "dynamic-configs-reader",
                            "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        consumer.assign([ck.TopicPartition(topic, 0, offset)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, f"fetch error: {msg.error()}"
            assert (msg.offset(), msg.value()) == (offset, value)
            return msg.timestamp()
        raise TimeoutError(f"record {topic}[0]@{offset} not read within 30 s")
    finally:
        consumer.close()


def produced_timestamp(bootstrap: str, topic: str, tag: str) -> tuple[int, int, float, float]:
    """Produce a record with the old CreateTime, read it back: (type, timestamp, t0, t1) where
    [t0, t1] is the wall-clock window (ms) of the produce."""
    value = f"{tag}-{time.monotonic_ns()}".encode()
    t0 = time.time() * 1000
    offset = produce_old_timestamp(bootstrap, topic, value)
    t1 = time.time() * 1000
    ts_type, ts = read_timestamp(bootstrap, topic, offset, value)
    return ts_type, ts, t0, t1


def assert_create_time(bootstrap: str, topic: str, tag: str) -> None:
    ts_type, ts, _, _ = produced_timestamp(bootstrap, topic, tag)
    assert (ts_type, ts) == (ck.TIMESTAMP_CREATE_TIME, OLD_TS), (
        f"{topic}: expected CreateTime {OLD_TS}, the consumer saw type {ts_type} timestamp {ts}")


def assert_log_append_time(bootstrap: str, topic: str, tag: str) -> None:
    ts_type, ts, t0, t1 = produced_timestamp(bootstrap, topic, tag)
    assert ts_type == ck.TIMESTAMP_LOG_APPEND_TIME, (
        f"{topic}: expected LOG_APPEND_TIME, the consumer saw type {ts_type} timestamp {ts}")
    # the broker's clock when it appended, not the producer's timestamp (1 s slack for rounding)
    assert t0 - 1000 <= ts <= t1 + 1000, f"log-append timestamp {ts} outside [{t0}, {t1}]"


# ---------------------------------------------------------------------------
# 1. cluster-wide default applied to records
# ---------------------------------------------------------------------------


def test_cluster_wide_log_append_time_stamps_records_of_topics_without_override(server, topic_name):
    b = server.bootstrap
    admin = ck_admin(b)
    plain, pinned = f"{topic_name}-plain", f"{topic_name}-pinned"
    ck_create_topic(b, plain, 1)
    ck_create_topic(b, pinned, 1, config={"message.timestamp.type": "CreateTime"})

    # before: the producer's timestamps are kept
    assert_create_time(b, plain, "before")
    assert ck_describe(admin, ResourceType.TOPIC, plain)["message.timestamp.type"] == ("CreateTime", DEFAULT)

    set_cluster_default(b, log_message_timestamp_type="LogAppendTime")

    assert ck_describe(admin, ResourceType.TOPIC, plain)["message.timestamp.type"] == (
        "LogAppendTime", DYNAMIC_DEFAULT)
    assert ck_describe(admin, ResourceType.TOPIC, pinned)["message.timestamp.type"] == (
        "CreateTime", TOPIC_CONFIG)
    assert_log_append_time(b, plain, "dynamic")
    assert_create_time(b, pinned, "pinned")
    # a topic created while the default is in force gets it too
    late = f"{topic_name}-late"
    ck_create_topic(b, late, 1)
    assert_log_append_time(b, late, "late")

    assert raw_incremental_alter(b, RT_BROKER, "", [("log.message.timestamp.type", DELETE, None)]) == (NONE, None)

    assert cluster_defaults(b) == {}
    assert ck_describe(admin, ResourceType.TOPIC, plain)["message.timestamp.type"] == ("CreateTime", DEFAULT)
    assert_create_time(b, plain, "after-delete")
    assert_create_time(b, late, "late-after-delete")


# ---------------------------------------------------------------------------
# 2. precedence: per-broker over cluster-wide
# ---------------------------------------------------------------------------


def test_per_broker_value_wins_over_cluster_default_and_broker_empty_lists_only_defaults(
        server, topic_name):
    b = server.bootstrap
    admin = ck_admin(b)
    ck_create_topic(b, topic_name, 1)

    set_cluster_default(b, log_message_timestamp_type="CreateTime", log_retention_ms="3600000")
    ck_alter(admin, ResourceType.BROKER, "1", [
        ("log.message.timestamp.type", AlterConfigOpType.SET, "LogAppendTime"),
        ("background.threads", AlterConfigOpType.SET, "7"),
    ])

    topic = ck_describe(admin, ResourceType.TOPIC, topic_name)
    assert topic["message.timestamp.type"] == ("LogAppendTime", DYNAMIC_BROKER)
    assert topic["retention.ms"] == ("3600000", DYNAMIC_DEFAULT)
    assert_log_append_time(b, topic_name, "per-broker")

    # BROKER "": the cluster-wide dynamic defaults, and nothing else
    assert cluster_defaults(b) == {
        "log.message.timestamp.type": ("CreateTime", DYNAMIC_DEFAULT),
        "log.retention.ms": ("3600000", DYNAMIC_DEFAULT),
    }
    # BROKER "1": everything, the dynamic ones with their level
    broker = ck_describe(admin, ResourceType.BROKER, "1")
    assert dynamic_only(broker) == {
        "log.message.timestamp.type": ("LogAppendTime", DYNAMIC_BROKER),
        "background.threads": ("7", DYNAMIC_BROKER),
        "log.retention.ms": ("3600000", DYNAMIC_DEFAULT),
    }
    assert broker["num.io.threads"][1] == DEFAULT  # a broker config never set stays default

    # removing the per-broker value falls back to the cluster-wide one
    ck_alter(admin, ResourceType.BROKER, "1", [("log.message.timestamp.type", AlterConfigOpType.DELETE, None)])
    assert ck_describe(admin, ResourceType.TOPIC, topic_name)["message.timestamp.type"] == (
        "CreateTime", DYNAMIC_DEFAULT)
    assert_create_time(b, topic_name, "fallback")


# ---------------------------------------------------------------------------
# 3. errors leave the stored configs unchanged
# ---------------------------------------------------------------------------


def _stored(server, topic: str) -> dict:
    """Everything a refused request must not change: the cluster-wide defaults, broker 1's
    dynamic configs and the topic's effective configs."""
    admin = ck_admin(server.bootstrap)
    return {
        "cluster": cluster_defaults(server.bootstrap),
        "broker1": dynamic_only(ck_describe(admin, ResourceType.BROKER, "1")),
        "topic": ck_describe(admin, ResourceType.TOPIC, topic),
    }


# (description, api, broker resource name, configs, expected error)
#   api "inc": IncrementalAlterConfigs SET of every config; "legacy": AlterConfigs
ERROR_CASES = [
    ("static log.dirs", "inc", "", {"log.dirs": "/tmp/elsewhere"}, INVALID_REQUEST),
    ("static node.id", "inc", "", {"node.id": "3"}, INVALID_REQUEST),
    ("static on broker 1", "inc", "1", {"log.dirs": "/tmp/elsewhere"}, INVALID_REQUEST),
    ("policy not in list", "inc", "", {"log.cleanup.policy": "forever"}, INVALID_REQUEST),
    ("not a number", "inc", "", {"log.retention.ms": "soon"}, INVALID_REQUEST),
    ("background.threads=0", "inc", "1", {"background.threads": "0"}, INVALID_REQUEST),
    ("valid and invalid together", "inc", "", {"log.retention.ms": "1000", "log.dirs": "/x"},
     INVALID_REQUEST),
    ("legacy: valid and invalid", "legacy", "", {"log.retention.ms": "1000", "log.dirs": "/x"},
     INVALID_REQUEST),
    ("legacy: invalid value", "legacy", "1", {"background.threads": "0"}, INVALID_REQUEST),
    ("name not an integer", "inc", "abc", {"background.threads": "5"}, INVALID_REQUEST),
    ("name broker-1", "inc", "broker-1", {"log.retention.ms": "1000"}, INVALID_REQUEST),
    ("legacy: name not an integer", "legacy", "abc", {"background.threads": "5"}, INVALID_REQUEST),
]


@pytest.mark.parametrize("what,api,name,configs,expected", ERROR_CASES,
                         ids=[c[0].replace(" ", "-") for c in ERROR_CASES])
def test_refused_broker_config_change_returns_error_and_changes_nothing(
        server, topic_name, what, api, name, configs, expected):
    b = server.bootstrap
    ck_create_topic(b, topic_name, 1)
    # something stored at both levels, so that a refused request that wipes or half-applies is seen
    set_cluster_default(b, log_retention_ms="3600000", log_cleanup_policy="delete")
    ck_alter(ck_admin(b), ResourceType.BROKER, "1", [("background.threads", AlterConfigOpType.SET, "7")])
    before = _stored(server, topic_name)

    if api == "inc":
        err, msg = raw_incremental_alter(b, RT_BROKER, name, [(k, SET, v) for k, v in configs.items()])
    else:
        err, msg = raw_alter(b, RT_BROKER, name, configs)

    assert err == expected, f"{what}: error {err} ({msg!r}), expected {expected}"
    assert _stored(server, topic_name) == before, f"{what}: the refused request changed configs"


def test_refused_broker_config_through_confluent_kafka_is_invalid_request(server):
    admin = ck_admin(server.bootstrap)
    assert ck_alter_error(admin, ResourceType.BROKER, "1",
                          [("log.dirs", AlterConfigOpType.SET, "/tmp/elsewhere")]) == INVALID_REQUEST
    assert ck_alter_error(admin, ResourceType.BROKER, "1",
                          [("log.cleanup.policy", AlterConfigOpType.SET, "forever")]) == INVALID_REQUEST
    assert dynamic_only(ck_describe(admin, ResourceType.BROKER, "1")) == {}


def test_a_resource_or_config_named_twice_or_a_null_set_is_invalid_request(server):
    """Kafka checks a request's shape first: each resource at most once ("Each resource must
    appear at most once."), each config once per resource, no SET with a null value."""
    b = server.bootstrap
    res = struct.pack(">b", RT_BROKER) + kstring("") + _array(
        [kstring("log.retention.ms") + struct.pack(">b", SET) + kstring("1000")])
    results = _alter_results(_call(b, 44, 0, _array([res, res]) + struct.pack(">b", False)))
    assert [err for err, _ in results] == [INVALID_REQUEST, INVALID_REQUEST]
    twice = [("log.retention.ms", SET, "1000"), ("log.retention.ms", SET, "2000")]
    assert raw_incremental_alter(b, RT_BROKER, "", twice)[0] == INVALID_REQUEST
    assert raw_incremental_alter(b, RT_BROKER, "", [("log.retention.ms", SET, None)])[0] == INVALID_REQUEST
    assert cluster_defaults(b) == {}


def test_unknown_broker_config_is_kept_as_a_custom_config_and_changes_no_topic(server, topic_name):
    """Kafka accepts a broker config name it does not define (a custom config, for plugins):
    stored and described, used by nothing. A topic config name set on a broker is such a name:
    it is not the topic config's default (log.retention.ms is)."""
    b = server.bootstrap
    admin = ck_admin(b)
    ck_create_topic(b, topic_name, 1)
    assert raw_incremental_alter(b, RT_BROKER, "", [("no.such.config", SET, "1"),
                                                   ("retention.ms", SET, "1000")]) == (NONE, None)
    assert cluster_defaults(b) == {"no.such.config": ("1", DYNAMIC_DEFAULT),
                                   "retention.ms": ("1000", DYNAMIC_DEFAULT)}
    assert ck_describe(admin, ResourceType.BROKER, "1")["no.such.config"] == ("1", DYNAMIC_DEFAULT)
    assert ck_describe(admin, ResourceType.TOPIC, topic_name)["retention.ms"][1] == DEFAULT


def test_concurrent_changes_of_one_resource_are_all_kept(server):
    """Two clients changing different configs of the cluster-wide resource at once: each change
    is computed from the stored value under the server's lock, so none is lost."""
    import threading
    b = server.bootstrap
    rounds = 40
    errors: list[object] = []

    def setter(tag: str) -> None:
        try:
            for i in range(rounds):
                assert raw_incremental_alter(b, RT_BROKER, "", [(f"custom.{tag}.{i}", SET, str(i))]) == (NONE, None)
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=setter, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    stored = cluster_defaults(b)
    assert len(stored) == 2 * rounds, sorted(set(
        f"custom.{t}.{i}" for t in "ab" for i in range(rounds)) - set(stored))


def test_validate_only_changes_nothing(server, topic_name):
    b = server.bootstrap
    ck_create_topic(b, topic_name, 1)
    assert raw_incremental_alter(b, RT_BROKER, "", [("log.message.timestamp.type", SET, "LogAppendTime")],
                                 validate_only=True) == (NONE, None)
    assert raw_alter(b, RT_BROKER, "", {"log.message.timestamp.type": "LogAppendTime"},
                     validate_only=True) == (NONE, None)
    assert raw_incremental_alter(b, RT_BROKER, "", [("log.dirs", SET, "/x")],
                                 validate_only=True)[0] == INVALID_REQUEST
    assert raw_incremental_alter(b, RT_GROUP, "g", [("consumer.session.timeout.ms", SET, "50000")],
                                 validate_only=True) == (NONE, None)

    assert cluster_defaults(b) == {}
    assert all(src == DEFAULT for _, src in ck_describe(ck_admin(b), ResourceType.GROUP, "g").values())
    assert_create_time(b, topic_name, "validate-only")


def test_broker_resource_naming_another_broker_is_invalid_request(server):
    """Kafka's ConfigAdminManager refuses a BROKER resource that names neither "" nor the
    receiving broker: INVALID_REQUEST "Unexpected broker id, expected 1, but received 7"
    (DescribeConfigs of such a resource already answers that here)."""
    b = server.bootstrap
    assert raw_describe(b, RT_BROKER, "7")[0] == INVALID_REQUEST
    err, msg = raw_incremental_alter(b, RT_BROKER, "7", [("background.threads", SET, "5")])
    assert err == INVALID_REQUEST, f"IncrementalAlterConfigs BROKER '7' on broker 1: {err} {msg!r}"
    err, msg = raw_alter(b, RT_BROKER, "7", {"background.threads": "5"})
    assert err == INVALID_REQUEST, f"AlterConfigs BROKER '7' on broker 1: {err} {msg!r}"


def test_legacy_alter_configs_with_null_value_is_invalid_request_and_keeps_configs(server, topic_name):
    """Kafka refuses a null value in AlterConfigs before anything is changed: INVALID_REQUEST
    "Null value not supported for : log.retention.ms"."""
    b = server.bootstrap
    ck_create_topic(b, topic_name, 1)
    set_cluster_default(b, log_retention_ms="3600000", log_message_timestamp_type="LogAppendTime")
    before = _stored(server, topic_name)

    err, msg = raw_alter(b, RT_BROKER, "", {"log.retention.ms": None})

    assert err == INVALID_REQUEST, f"AlterConfigs BROKER '' log.retention.ms=null: {err} {msg!r}"
    assert _stored(server, topic_name) == before


# ---------------------------------------------------------------------------
# 4. group configs
# ---------------------------------------------------------------------------


def test_group_configs_set_describe_refuse_out_of_range_and_delete(server):
    admin = ck_admin(server.bootstrap)
    group = "orders-app"  # never created: group configs do not need the group

    assert ck_describe(admin, ResourceType.GROUP, group) == {k: (v, DEFAULT) for k, v in GROUP_DEFAULTS.items()}

    ck_alter(admin, ResourceType.GROUP, group, [
        ("consumer.session.timeout.ms", AlterConfigOpType.SET, "50000"),
        ("consumer.heartbeat.interval.ms", AlterConfigOpType.SET, "6000"),
    ])
    expected = {k: (v, DEFAULT) for k, v in GROUP_DEFAULTS.items()}
    expected["consumer.session.timeout.ms"] = ("50000", GROUP_CONFIG)
    expected["consumer.heartbeat.interval.ms"] = ("6000", GROUP_CONFIG)
    assert ck_describe(admin, ResourceType.GROUP, group) == expected
    # configs belong to one group
    assert ck_describe(admin, ResourceType.GROUP, "other-app") == {
        k: (v, DEFAULT) for k, v in GROUP_DEFAULTS.items()}

    for config, value in [("consumer.session.timeout.ms", "60001"),
                          ("consumer.session.timeout.ms", "44999"),
                          ("consumer.heartbeat.interval.ms", "4999"),
                          ("consumer.heartbeat.interval.ms", "15001"),
                          ("consumer.session.timeout.ms", "abc"),
                          ("no.such.group.config", "1")]:
        code = ck_alter_error(admin, ResourceType.GROUP, group, [(config, AlterConfigOpType.SET, value)])
        assert code == INVALID_CONFIG, f"{config}={value}: error {code}, expected INVALID_CONFIG"
    # the range bounds themselves are accepted
    ck_alter(admin, ResourceType.GROUP, "bounds-app", [
        ("consumer.session.timeout.ms", AlterConfigOpType.SET, "60000"),
        ("consumer.heartbeat.interval.ms", AlterConfigOpType.SET, "15000"),
    ])
    bounds = ck_describe(admin, ResourceType.GROUP, "bounds-app")
    assert bounds["consumer.session.timeout.ms"] == ("60000", GROUP_CONFIG)
    assert bounds["consumer.heartbeat.interval.ms"] == ("15000", GROUP_CONFIG)
    assert ck_describe(admin, ResourceType.GROUP, group) == expected

    ck_alter(admin, ResourceType.GROUP, group,
             [("consumer.session.timeout.ms", AlterConfigOpType.DELETE, None)])
    expected["consumer.session.timeout.ms"] = ("45000", DEFAULT)
    assert ck_describe(admin, ResourceType.GROUP, group) == expected


# ---------------------------------------------------------------------------
# 5. APPEND / SUBTRACT on a list config
# ---------------------------------------------------------------------------


def test_append_and_subtract_on_log_cleanup_policy_cluster_wide(server, topic_name):
    b = server.bootstrap
    admin = ck_admin(b)
    ck_create_topic(b, topic_name, 1)

    # APPEND starts from the default "delete"
    assert raw_incremental_alter(b, RT_BROKER, "", [("log.cleanup.policy", APPEND, "compact")]) == (NONE, None)
    assert cluster_defaults(b) == {"log.cleanup.policy": ("delete,compact", DYNAMIC_DEFAULT)}
    assert ck_describe(admin, ResourceType.TOPIC, topic_name)["cleanup.policy"] == (
        "delete,compact", DYNAMIC_DEFAULT)

    # appending a value already in the list does not repeat it
    assert raw_incremental_alter(b, RT_BROKER, "", [("log.cleanup.policy", APPEND, "compact")]) == (NONE, None)
    assert cluster_defaults(b) == {"log.cleanup.policy": ("delete,compact", DYNAMIC_DEFAULT)}

    assert raw_incremental_alter(b, RT_BROKER, "", [("log.cleanup.policy", SUBTRACT, "compact")]) == (NONE, None)
    assert cluster_defaults(b) == {"log.cleanup.policy": ("delete", DYNAMIC_DEFAULT)}
    assert ck_describe(admin, ResourceType.TOPIC, topic_name)["cleanup.policy"] == ("delete", DYNAMIC_DEFAULT)

    # APPEND / SUBTRACT are only for list configs (Kafka: INVALID_CONFIG)
    err, _ = raw_incremental_alter(b, RT_BROKER, "", [("log.retention.ms", APPEND, "5")])
    assert err == INVALID_CONFIG
    assert cluster_defaults(b) == {"log.cleanup.policy": ("delete", DYNAMIC_DEFAULT)}


# ---------------------------------------------------------------------------
# 6. durability
# ---------------------------------------------------------------------------


def test_dynamic_configs_survive_kill9_and_are_applied_after_restart(server, topic_name):
    b = server.bootstrap
    admin = ck_admin(b)
    ck_create_topic(b, topic_name, 1)

    set_cluster_default(b, log_message_timestamp_type="LogAppendTime", log_retention_ms="3600000")
    ck_alter(admin, ResourceType.BROKER, "1", [("num.io.threads", AlterConfigOpType.SET, "9"),
                                               ("log.retention.ms", AlterConfigOpType.SET, "7200000")])
    ck_alter(admin, ResourceType.GROUP, "orders-app",
             [("consumer.session.timeout.ms", AlterConfigOpType.SET, "55000")])
    # killed right after the acknowledgements: they must have been durable
    server.kill9()
    server.start()

    admin = ck_admin(b)
    assert cluster_defaults(b) == {
        "log.message.timestamp.type": ("LogAppendTime", DYNAMIC_DEFAULT),
        "log.retention.ms": ("3600000", DYNAMIC_DEFAULT),
    }
    assert dynamic_only(ck_describe(admin, ResourceType.BROKER, "1")) == {
        "log.message.timestamp.type": ("LogAppendTime", DYNAMIC_DEFAULT),
        "log.retention.ms": ("7200000", DYNAMIC_BROKER),
        "num.io.threads": ("9", DYNAMIC_BROKER),
    }
    assert ck_describe(admin, ResourceType.GROUP, "orders-app")["consumer.session.timeout.ms"] == (
        "55000", GROUP_CONFIG)
    topic = ck_describe(admin, ResourceType.TOPIC, topic_name)
    assert topic["message.timestamp.type"] == ("LogAppendTime", DYNAMIC_DEFAULT)
    assert topic["retention.ms"] == ("7200000", DYNAMIC_BROKER)
    # and applied to the topic's log from the start
    assert_log_append_time(b, topic_name, "after-restart")


# ---------------------------------------------------------------------------
# 7. three nodes
# ---------------------------------------------------------------------------


def _topic_config_seen_by(node, topic: str, config: str):
    err, configs = raw_describe(node.bootstrap, RT_TOPIC, topic)
    return configs.get(config) if err == NONE else ("error", err)


@pytest.mark.timeout(120)
def test_cluster_wide_config_set_through_one_node_is_seen_by_all_and_survives_restart(
        server_factory, topic_name):
    c = Cluster(server_factory, size=3).start()
    c.create_topic(topic_name, 1, replication_factor=3)

    set_cluster_default(c[1].bootstrap, log_message_timestamp_type="LogAppendTime")
    assert raw_incremental_alter(c[2].bootstrap, RT_GROUP, "orders-app",
                                 [("consumer.session.timeout.ms", SET, "50000")]) == (NONE, None)

    wanted = ("LogAppendTime", DYNAMIC_DEFAULT)
    for i in c.ids:
        wait_until(lambda: _topic_config_seen_by(c[i], topic_name, "message.timestamp.type") == wanted,
                   timeout=15, message=f"node {i} to describe message.timestamp.type as {wanted}")
        group = ck_describe(ck_admin(c[i].bootstrap), ResourceType.GROUP, "orders-app")
        assert group["consumer.session.timeout.ms"] == ("50000", GROUP_CONFIG), f"node {i}"
    # the partition leader (whichever node it is) applies it
    assert_log_append_time(c.bootstrap(), topic_name, "cluster")

    leader = c.wait_leader(topic_name, 0)
    c[leader].kill9()
    c[leader].start()

    assert raw_describe(c[leader].bootstrap, RT_BROKER, "") == (
        NONE, {"log.message.timestamp.type": ("LogAppendTime", DYNAMIC_DEFAULT)})
    wait_until(lambda: _topic_config_seen_by(c[leader], topic_name, "message.timestamp.type") == wanted,
               timeout=15, message=f"restarted node {leader} to describe {wanted}")
    group = ck_describe(ck_admin(c[leader].bootstrap), ResourceType.GROUP, "orders-app")
    assert group["consumer.session.timeout.ms"] == ("50000", GROUP_CONFIG)
    c.wait_leader(topic_name, 0)
    assert_log_append_time(c.bootstrap(), topic_name, "cluster-after-restart")
