"""The chronik-server process contract: flags, env vars, config errors,
data-dir locking, signals, HTTP endpoints, broker config flags."""

from __future__ import annotations

import re
import signal
import socket

import confluent_kafka as ck
import pytest

from clients import (
    assert_read_matches,
    ck_admin,
    ck_create_topic,
    ck_produce,
    ck_producer,
    ck_read_all,
    make_messages,
)
from harness import free_ports, http_get, run_server_to_exit
from kafka_wire import assert_serving

# A Prometheus text-format sample line: name{labels} value
METRIC_LINE = re.compile(
    r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?\s+[-+]?([0-9.]+([eE][-+]?[0-9]+)?|NaN|Inf)(\s+\d+)?$"
)


def base_args(data_dir, kafka_addr=None, http_addr=None) -> list[str]:
    kp, hp = free_ports(2)
    return [
        "--node-id", "1",
        "--data-dir", str(data_dir),
        "--kafka-addr", kafka_addr or f"127.0.0.1:{kp}",
        "--http-addr", http_addr or f"127.0.0.1:{hp}",
    ]


def assert_refused(result, *mentions: str) -> None:
    """Exited non-zero with a reason on stderr that mentions one of `mentions`."""
    assert result.returncode != 0, f"expected a non-zero exit, got 0; stderr: {result.stderr!r}"
    assert result.returncode > 0, f"expected an error exit, got signal {-result.returncode}"
    reason = result.stderr.strip()
    assert reason, f"no reason on stderr (stdout: {result.stdout[-500:]!r})"
    if mentions:
        assert any(m.lower() in reason.lower() for m in mentions), (
            f"stderr does not mention any of {mentions}: {reason[-1000:]!r}"
        )


@pytest.mark.parametrize("bad_addr", ["not-an-address", "127.0.0.1:99999", "127.0.0.1"])
def test_invalid_kafka_addr_exits_nonzero_with_reason(tmp_path, server_bin, bad_addr):
    result = run_server_to_exit(base_args(tmp_path / "data", kafka_addr=bad_addr))
    assert_refused(result, bad_addr, "kafka-addr", "kafka_addr", "kafka addr")


def test_kafka_addr_in_use_exits_nonzero(tmp_path, server_bin):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        addr = f"127.0.0.1:{holder.getsockname()[1]}"
        result = run_server_to_exit(base_args(tmp_path / "data", kafka_addr=addr))
    assert_refused(result)


@pytest.mark.parametrize(
    "flags",
    [["--num-partitions", "0"], ["--num-partitions", "many"], ["--auto-create-topics-enable", "maybe"]],
    ids=["num-partitions-0", "num-partitions-nan", "auto-create-not-bool"],
)
def test_invalid_broker_flag_exits_nonzero_with_reason(tmp_path, server_bin, flags):
    result = run_server_to_exit(base_args(tmp_path / "data") + flags)
    assert_refused(result, flags[0].lstrip("-"), flags[0].lstrip("-").replace("-", "_"), flags[1])


def test_unparseable_config_file_exits_nonzero(tmp_path, server_bin):
    cfg = tmp_path / "broken.toml"
    cfg.write_text("this is = = not toml [\n")
    result = run_server_to_exit(base_args(tmp_path / "data") + ["--config", str(cfg)])
    assert_refused(result)


def test_missing_config_file_exits_nonzero(tmp_path, server_bin):
    cfg = tmp_path / "does-not-exist.toml"
    result = run_server_to_exit(base_args(tmp_path / "data") + ["--config", str(cfg)])
    assert_refused(result, "does-not-exist.toml", "config")


def test_second_server_on_locked_data_dir_exits_nonzero(server):
    result = run_server_to_exit(base_args(server.data_dir), timeout=20)
    assert_refused(result)
    # the first server is unaffected
    status, _ = http_get(server.url("/health/ready"))
    assert status == 200
    assert_serving(server.bootstrap)


def test_sigterm_exits_zero(server):
    assert server.stop(signal.SIGTERM) == 0


def test_sigterm_while_clients_connected_exits_zero_and_data_survives(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 2)
    msgs = make_messages(500, 2, "sigterm")
    acked = ck_produce(server.bootstrap, topic_name, msgs, acks="all")
    producer = ck_producer(server.bootstrap)  # an idle client connection stays open
    producer.list_topics(timeout=10)

    assert server.stop(signal.SIGTERM) == 0
    server.start()

    read = ck_read_all(server.bootstrap, topic_name, 2)
    assert_read_matches(msgs, read, acked)


def test_flags_from_env_vars(server_factory):
    srv = server_factory(addressing="env", env={"CHRONIK_NUM_PARTITIONS": "2"})
    assert "--kafka-addr" not in srv.command()
    srv.start()
    assert_serving(srv.bootstrap)
    md = ck_admin(srv.bootstrap).list_topics(timeout=10)
    assert [(b.id, b.port) for b in md.brokers.values()] == [(1, srv.kafka_port)]
    # CHRONIK_NUM_PARTITIONS applies to auto-created topics
    ck_produce(srv.bootstrap, "env-auto-created", [make_messages(1, 1, "env")[0]])
    md = ck_admin(srv.bootstrap).list_topics(topic="env-auto-created", timeout=10)
    assert len(md.topics["env-auto-created"].partitions) == 2
    assert (srv.data_dir).is_dir()


def test_settings_from_config_file(server_factory, topic_name):
    srv = server_factory(addressing="config")
    srv.config_extra = {"num_partitions": 3}
    assert srv.command()[1:] == ["--config", str(srv.config_path)]
    srv.start()
    assert_serving(srv.bootstrap)
    # num_partitions from the file applies to auto-created topics
    ck_produce(srv.bootstrap, topic_name, [make_messages(1, 1, "cfg")[0]])
    md = ck_admin(srv.bootstrap).list_topics(topic=topic_name, timeout=10)
    assert sorted(md.topics[topic_name].partitions) == [0, 1, 2]
    assert srv.data_dir.is_dir()


def test_health_live_and_ready(server):
    assert http_get(server.url("/health/live"))[0] == 200
    assert http_get(server.url("/health/ready"))[0] == 200


def test_metrics_endpoint_serves_prometheus_text(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 1)
    ck_produce(server.bootstrap, topic_name, make_messages(10, 1, "metrics"))
    status, body = http_get(server.url("/metrics"))
    assert status == 200
    samples = [line for line in body.splitlines() if line and not line.startswith("#")]
    assert any(METRIC_LINE.match(line) for line in samples), f"no metric sample line in:\n{body[:2000]}"


def test_num_partitions_flag_sets_auto_created_topic_partitions(server_factory, topic_name):
    srv = server_factory(extra_args=["--num-partitions", "3"]).start()
    acked = ck_produce(srv.bootstrap, topic_name, [make_messages(1, 1, "auto")[0]])
    assert acked == [(0, 0)]
    md = ck_admin(srv.bootstrap).list_topics(topic=topic_name, timeout=10)
    assert sorted(md.topics[topic_name].partitions) == [0, 1, 2]


def test_auto_create_disabled_unknown_topic_is_not_created(server_factory, topic_name):
    srv = server_factory(extra_args=["--auto-create-topics-enable", "false"]).start()
    producer = ck_producer(srv.bootstrap, **{"message.timeout.ms": 3000})
    errors = []
    producer.produce(topic_name, value=b"x", on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(15) == 0
    assert len(errors) == 1 and errors[0] is not None, f"delivery unexpectedly succeeded: {errors}"

    md = ck_admin(srv.bootstrap).list_topics(topic=topic_name, timeout=10)
    t = md.topics.get(topic_name)
    assert t is not None and t.error is not None
    assert t.error.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART
    assert topic_name not in ck_admin(srv.bootstrap).list_topics(timeout=10).topics


def test_advertised_addr_is_returned_in_metadata(server_factory):
    srv = server_factory()
    srv.extra_args = ["--advertised-addr", f"localhost:{srv.kafka_port}"]
    srv.start()
    md = ck_admin(srv.bootstrap).list_topics(timeout=10)
    assert [(b.id, b.host, b.port) for b in md.brokers.values()] == [(1, "localhost", srv.kafka_port)]
