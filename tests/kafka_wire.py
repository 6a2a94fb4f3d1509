"""Minimal hand-rolled Kafka wire protocol helpers for raw-socket tests.

Only what the raw tests need: framing, request headers v1/v2, ApiVersions v0
and Fetch v4 (both non-flexible, so no compact encodings are needed apart from
the header-v2 tagged-field byte).
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

API_FETCH = 1
API_METADATA = 3
API_API_VERSIONS = 18

ERR_NONE = 0
ERR_UNSUPPORTED_VERSION = 35


def connect(bootstrap: str, timeout: float = 10.0) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def kstring(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def compact_string(s: str) -> bytes:
    b = s.encode()
    return uvarint(len(b) + 1) + b


def request_header(api_key: int, api_version: int, correlation_id: int,
                   client_id: str | None = "chronik-raw-test", header_version: int = 1) -> bytes:
    h = struct.pack(">hhi", api_key, api_version, correlation_id) + kstring(client_id)
    if header_version >= 2:
        h += uvarint(0)  # empty tagged fields
    return h


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock: socket.socket, n: int, timeout: float) -> bytes:
    """Read exactly n bytes or raise ConnectionError on EOF / TimeoutError."""
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out reading {n} bytes (got {len(buf)})")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout as e:
            raise TimeoutError(f"timed out reading {n} bytes (got {len(buf)})") from e
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket, timeout: float = 10.0) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(sock, 4, timeout))
    assert 0 <= size < 64 * 1024 * 1024, f"implausible response frame size {size}"
    return recv_exact(sock, size, timeout)


def wait_closed(sock: socket.socket, timeout: float) -> bool:
    """True if the peer closes the connection (EOF or reset) within timeout.

    Any bytes the peer sends before closing are read and discarded.
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not chunk:
            return True


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"response truncated: need {size} bytes at {self.pos}, have {len(self.data)}")
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return vals if len(vals) > 1 else vals[0]

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b.decode()

    def bytes_(self) -> bytes | None:
        n = self.take(">i")
        if n < 0:
            return None
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def remaining(self) -> int:
        return len(self.data) - self.pos


@dataclass
class ApiVersionsV0:
    correlation_id: int
    error_code: int
    api_keys: list[tuple[int, int, int]]
    trailing_bytes: int


def parse_api_versions_v0(resp: bytes) -> ApiVersionsV0:
    r = Reader(resp)
    corr = r.take(">i")
    err = r.take(">h")
    n = r.take(">i")
    assert 0 <= n < 10000, f"implausible api key count {n}"
    keys = [r.take(">hhh") for _ in range(n)]
    return ApiVersionsV0(corr, err, keys, r.remaining())


def api_versions_v0(sock: socket.socket, correlation_id: int = 1, timeout: float = 10.0) -> ApiVersionsV0:
    sock.sendall(frame(request_header(API_API_VERSIONS, 0, correlation_id)))
    resp = parse_api_versions_v0(recv_frame(sock, timeout))
    assert resp.correlation_id == correlation_id
    return resp


def assert_serving(bootstrap: str) -> None:
    """A brand-new connection gets a well-formed, successful ApiVersions v0 answer."""
    with connect(bootstrap) as s:
        resp = api_versions_v0(s, correlation_id=4242)
        assert resp.error_code == ERR_NONE
        assert any(k == API_API_VERSIONS for k, _, _ in resp.api_keys)


# ---------------------------------------------------------------------------
# Fetch v4
# ---------------------------------------------------------------------------


@dataclass
class FetchPartitionV4:
    partition: int
    error_code: int
    high_watermark: int
    records: bytes | None


def fetch_v4_request(correlation_id: int, topic: str, partition: int, offset: int,
                     max_wait_ms: int, min_bytes: int = 1, max_bytes: int = 1 << 20) -> bytes:
    body = struct.pack(">iiiib", -1, max_wait_ms, min_bytes, max_bytes, 0)  # replica_id, ..., isolation
    body += struct.pack(">i", 1) + kstring(topic)
    body += struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, max_bytes)
    return frame(request_header(API_FETCH, 4, correlation_id) + body)


def parse_fetch_v4(resp: bytes, correlation_id: int) -> dict[tuple[str, int], FetchPartitionV4]:
    r = Reader(resp)
    corr = r.take(">i")
    assert corr == correlation_id, f"correlation id {corr} != {correlation_id}"
    r.take(">i")  # throttle_time_ms
    out = {}
    for _ in range(r.take(">i")):
        topic = r.string()
        for _ in range(r.take(">i")):
            p, err, hw, _lso = r.take(">ihqq")
            n_aborted = r.take(">i")
            for _ in range(max(n_aborted, 0)):
                r.take(">qq")
            records = r.bytes_()
            out[(topic, p)] = FetchPartitionV4(p, err, hw, records)
    return out


def supported_range(api_keys: list[tuple[int, int, int]], api_key: int) -> tuple[int, int] | None:
    for k, lo, hi in api_keys:
        if k == api_key:
            return lo, hi
    return None
