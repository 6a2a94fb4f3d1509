"""Malformed and hostile input on raw sockets: the broker must drop the bad
connection (or answer per the protocol) and keep serving everyone else."""

from __future__ import annotations

import struct

from kafka_wire import (
    API_API_VERSIONS,
    ERR_UNSUPPORTED_VERSION,
    api_versions_v0,
    assert_serving,
    compact_string,
    connect,
    frame,
    parse_api_versions_v0,
    recv_frame,
    request_header,
    uvarint,
    wait_closed,
)

CLOSE_TIMEOUT_S = 5.0


def test_oversized_frame_closes_connection_other_connection_keeps_working(server):
    with connect(server.bootstrap) as bystander, connect(server.bootstrap) as attacker:
        # The bystander is mid-session before and after the attack.
        assert api_versions_v0(bystander, correlation_id=1).error_code == 0

        attacker.sendall(struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 64)
        assert wait_closed(attacker, CLOSE_TIMEOUT_S), "oversized frame did not get the connection closed"

        assert api_versions_v0(bystander, correlation_id=2).error_code == 0
    assert_serving(server.bootstrap)


def test_negative_frame_length_closes_connection(server):
    with connect(server.bootstrap) as s:
        s.sendall(struct.pack(">i", -5) + b"\x00" * 16)
        assert wait_closed(s, CLOSE_TIMEOUT_S), "negative frame length did not get the connection closed"
    assert_serving(server.bootstrap)


def test_api_versions_unsupported_version_gets_v0_error_response_with_api_list(server):
    # Sent the way a newer client would: flexible request header v2 and a v3-style body.
    corr = 77
    body = compact_string("chronik-raw-test") + compact_string("9.9.9") + uvarint(0)
    with connect(server.bootstrap) as s:
        s.sendall(frame(request_header(API_API_VERSIONS, 99, corr, header_version=2) + body))
        resp = parse_api_versions_v0(recv_frame(s))

        assert resp.correlation_id == corr
        assert resp.error_code == ERR_UNSUPPORTED_VERSION
        assert resp.api_keys, "api list must not be empty so the client can pick a version"
        assert any(k == API_API_VERSIONS and lo == 0 for k, lo, _ in resp.api_keys), resp.api_keys
        for k, lo, hi in resp.api_keys:
            assert 0 <= lo <= hi, f"bad range for api {k}: {lo}..{hi}"
        # v0 body: error_code + array only (no throttle_time / tagged fields)
        assert resp.trailing_bytes == 0, f"{resp.trailing_bytes} unexpected bytes after v0 body"

        # The connection stays usable: the client retries with a supported version.
        assert api_versions_v0(s, correlation_id=corr + 1).error_code == 0


def test_unknown_api_key_closes_connection_server_keeps_serving(server):
    with connect(server.bootstrap) as bystander:
        with connect(server.bootstrap) as s:
            s.sendall(frame(request_header(9999, 0, 5) + b"\x00" * 8))
            assert wait_closed(s, CLOSE_TIMEOUT_S), "unknown api key did not get the connection closed"
        assert api_versions_v0(bystander, correlation_id=3).error_code == 0
    assert_serving(server.bootstrap)


def test_truncated_request_then_disconnect_server_keeps_serving(server):
    with connect(server.bootstrap) as s:
        # Claims 100 bytes, sends 10, hangs up.
        s.sendall(struct.pack(">i", 100) + request_header(API_API_VERSIONS, 0, 9)[:10])
    assert_serving(server.bootstrap)


def test_garbage_request_body_does_not_take_down_server(server):
    # Metadata v1 whose body claims a 1,000,000-entry topic array and then ends.
    with connect(server.bootstrap) as s:
        s.sendall(frame(request_header(3, 1, 11) + struct.pack(">i", 1_000_000)))
        # An error response or a closed connection are both fine; wait for either (bounded)
        # so the server has processed the request before we check that it still serves.
        s.settimeout(CLOSE_TIMEOUT_S)
        try:
            s.recv(65536)
        except OSError:  # timeout or reset
            pass
    assert_serving(server.bootstrap)
