"""Unit tests of the delaying TCP proxy (chaos/proxy.py) against local servers on 127.0.0.1.

No chronik-server needed: the upstream is an echo server (or a sink that never reads) in threads.
Timing is asserted as lower bounds only; every wait is for a condition, with a generous deadline.
"""

from __future__ import annotations

import random
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos.proxy import DelayProxy  # noqa: E402

TIMEOUT_S = 10.0


def wait_until(cond: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


class Upstream:
    """A server on 127.0.0.1 in threads: echoes what it reads, or (echo=False) never reads."""

    def __init__(self, echo: bool = True):
        self.echo = echo
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.conns.append(conn)
            if self.echo:
                threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass

    def close_connections(self) -> None:
        with self._lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the accept()
        except OSError:
            pass
        self.sock.close()
        self.close_connections()


@pytest.fixture
def echo() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


@pytest.fixture
def proxy(echo: Upstream) -> Iterator[DelayProxy]:
    p = DelayProxy("127.0.0.1", echo.port).start()
    yield p
    p.close()


def connect(proxy: DelayProxy) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT_S)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = s.recv(min(n - len(buf), 1 << 20))
        assert data, f"connection closed after {len(buf)} of {n} bytes"
        buf += data
    return bytes(buf)


def round_trip(s: socket.socket, msg: bytes = b"ping") -> float:
    t0 = time.monotonic()
    s.sendall(msg)
    assert recv_exactly(s, len(msg)) == msg
    return time.monotonic() - t0


def ended(s: socket.socket) -> bool:
    """Does the peer close s (EOF or reset) before TIMEOUT_S?  Data still arriving is drained."""
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


# ---------------------------------------------------------------------------------------------

def test_data_arrives_intact_and_in_order_both_ways(proxy: DelayProxy):
    rng = random.Random(7)
    data = rng.randbytes(2 * 1024 * 1024)
    chunks, i = [], 0
    while i < len(data):
        n = rng.randint(1, 64 * 1024)
        chunks.append(data[i:i + n])
        i += n
    with connect(proxy) as s:
        sender = threading.Thread(target=lambda: [s.sendall(c) for c in chunks], daemon=True)
        sender.start()
        assert recv_exactly(s, len(data)) == data
        sender.join(TIMEOUT_S)
    wait_until(lambda: proxy.bytes_forwarded == 2 * len(data), "both directions counted")
    assert proxy.connections == 1


def test_a_delay_slows_each_direction_and_lifting_it_makes_it_fast(proxy: DelayProxy):
    with connect(proxy) as s:
        round_trip(s)
        proxy.set_delay(200)
        assert round_trip(s) >= 0.38   # 200 ms there, 200 ms back
        proxy.set_delay(0)
        for i in range(20):
            round_trip(s, f"round trip {i}".encode())


def test_order_is_kept_when_the_delay_drops_mid_stream(proxy: DelayProxy):
    first = b"".join(b"a%07d" % i for i in range(200))
    second = b"".join(b"b%07d" % i for i in range(200))
    with connect(proxy) as s:
        proxy.set_delay(300)
        t0 = time.monotonic()
        s.sendall(first)
        # Every byte of `first` was read (at 300 ms) before the delay drops: `second` (at 0 ms)
        # must still come after it.
        wait_until(lambda: proxy.bytes_received >= len(first), "the proxy read the first half")
        proxy.set_delay(0)
        s.sendall(second)
        assert recv_exactly(s, len(first) + len(second)) == first + second
        assert time.monotonic() - t0 >= 0.28


def test_closing_the_upstream_closes_the_client_connection(echo: Upstream, proxy: DelayProxy):
    with connect(proxy) as s:
        round_trip(s)
        echo.close_connections()
        assert ended(s)


def test_an_unreachable_upstream_closes_the_client_connection():
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()                        # nothing listens there now
    with DelayProxy("127.0.0.1", port) as p, connect(p) as s:
        assert ended(s)
        assert p.connections == 1


def test_close_returns_promptly_with_a_connection_stuck_on_a_peer_that_stopped_reading():
    sink = Upstream(echo=False)
    p = DelayProxy("127.0.0.1", sink.port, max_buffered=256 * 1024).start()
    s = connect(p)
    sender = threading.Thread(target=_send_until_closed, args=(s,), daemon=True)
    sender.start()
    # The proxy's queue towards the sink is full: its writer waits on a peer that does not read.
    wait_until(lambda: p.bytes_received - p.bytes_forwarded >= 256 * 1024, "a stuck writer")
    closer = threading.Thread(target=p.close, daemon=True)
    closer.start()
    closer.join(TIMEOUT_S)
    assert not closer.is_alive(), "close() hangs"
    assert ended(s)
    p.close()                           # idempotent
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p.port), timeout=TIMEOUT_S).close()
    s.close()
    sender.join(TIMEOUT_S)
    sink.close()


def _send_until_closed(s: socket.socket) -> None:
    block = b"x" * 65536
    try:
        while True:
            s.sendall(block)
    except OSError:
        pass


def test_close_without_start_and_negative_delay():
    p = DelayProxy("127.0.0.1", 9)
    p.close()
    p.close()
    with pytest.raises(ValueError):
        p.set_delay(-1)
