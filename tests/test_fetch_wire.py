"""Fetch long-poll semantics observed on a raw socket (Fetch v4), independent of
any client library's own polling behaviour."""

from __future__ import annotations

import threading
import time

from clients import ck_create_topic, ck_produce, make_messages
from kafka_wire import (
    API_FETCH,
    api_versions_v0,
    connect,
    fetch_v4_request,
    parse_fetch_v4,
    recv_frame,
    supported_range,
)


def require_fetch_v4(sock) -> None:
    rng = supported_range(api_versions_v0(sock).api_keys, API_FETCH)
    assert rng is not None and rng[0] <= 4 <= rng[1], f"Fetch v4 not supported: {rng}"


def test_fetch_at_log_end_waits_for_max_wait_then_returns_empty(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 1)
    with connect(server.bootstrap) as s:
        require_fetch_v4(s)
        started = time.monotonic()
        s.sendall(fetch_v4_request(10, topic_name, 0, offset=0, max_wait_ms=1500))
        resp = parse_fetch_v4(recv_frame(s, timeout=15), 10)
        elapsed = time.monotonic() - started

    part = resp[(topic_name, 0)]
    assert part.error_code == 0
    assert part.high_watermark == 0
    assert not part.records
    assert 1.2 <= elapsed < 5.0, f"empty fetch with max_wait 1.5s answered after {elapsed:.2f}s"


def test_parked_fetch_is_answered_when_data_arrives(server, topic_name):
    ck_create_topic(server.bootstrap, topic_name, 1)
    with connect(server.bootstrap) as s:
        require_fetch_v4(s)
        acked = {}

        def produce_later():
            acked["t"] = time.monotonic()
            acked["offsets"] = ck_produce(server.bootstrap, topic_name, make_messages(1, 1, "wire"), acks="1")

        s.sendall(fetch_v4_request(11, topic_name, 0, offset=0, max_wait_ms=5000))
        timer = threading.Timer(0.5, produce_later)
        timer.start()
        resp = parse_fetch_v4(recv_frame(s, timeout=15), 11)
        answered = time.monotonic()
        timer.join()

    assert acked.get("offsets") == [(0, 0)], "the timed produce did not succeed"
    part = resp[(topic_name, 0)]
    assert part.error_code == 0
    assert part.records, "fetch was answered without the new record"
    assert part.high_watermark == 1
    assert answered - acked["t"] < 3.0, (
        f"parked fetch answered {answered - acked['t']:.2f}s after produce (max_wait 5s)"
    )
