"""A delaying TCP proxy: makes one peer link slow (the "slow follower" fault).

DelayProxy listens on 127.0.0.1 on a free port (`port`, known once start() returned) and forwards
every connection it accepts to one fixed upstream (host, port).  It runs in its own daemon thread
with its own asyncio event loop; every other method may be called from any thread.

Delay: set_delay(ms) may be called at any time.  Each chunk of bytes read from either side is
written to the other side no earlier than the delay in force when it was read, after it was read.
Each direction of a connection has one queue and one writer task, so the bytes of a direction
keep their order: when the delay drops, chunks read later wait behind the ones read earlier.  The
bytes queued per direction are bounded (max_buffered): beyond that the proxy stops reading that
side, so a sender feels a slow or stopped receiver as it would without the proxy.  Delay 0 forwards
at once.

Closing: when either side of a connection reaches its end (after what it sent before is forwarded)
or fails, both sides are closed.  Closing never waits long on a peer that stopped reading: a
graceful close gets CLOSE_TIMEOUT_S, then the transport is aborted; close() of the proxy aborts
every connection at once, stops listening and joins the thread.

Counters (for tests and logs): `connections` accepted, `bytes_received` read from either side,
`bytes_forwarded` written to either side.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

CHUNK = 64 * 1024
MAX_BUFFERED = 8 * 1024 * 1024     # bytes queued per direction before the proxy stops reading
CONNECT_TIMEOUT_S = 5.0            # connecting to the upstream
CLOSE_TIMEOUT_S = 1.0              # a graceful close; then the transport is aborted
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0

_Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Direction:
    """One direction of a connection: chunks read from `src`, each written to `dst` at its due
    time (loop time), in the order they were read."""

    def __init__(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, max_buffered: int):
        self.src, self.dst = src, dst
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.buffered = 0
        self.max_buffered = max_buffered
        self.room = asyncio.Event()
        self.room.set()

    def put(self, due: float, data: bytes) -> None:
        """Queue a chunk read (b"": the side's end) to be written at `due`."""
        self.queue.put_nowait((due, data))
        self.buffered += len(data)
        if self.buffered >= self.max_buffered:
            self.room.clear()

    def taken(self, data: bytes) -> None:
        self.buffered -= len(data)
        if self.buffered < self.max_buffered:
            self.room.set()


class _Link:
    """One proxied connection: client <-> upstream, a reader and a writer task per direction."""

    def __init__(self, proxy: "DelayProxy", client: _Stream, upstream: _Stream):
        self.proxy = proxy
        self.writers = (client[1], upstream[1])
        self.directions = (_Direction(client[0], upstream[1], proxy.max_buffered),
                           _Direction(upstream[0], client[1], proxy.max_buffered))
        self.tasks: list[asyncio.Task] = []
        self.closing: asyncio.Task | None = None

    def start(self) -> None:
        for d in self.directions:
            self.tasks.append(asyncio.ensure_future(self._read(d)))
            self.tasks.append(asyncio.ensure_future(self._write(d)))

    async def _read(self, d: _Direction) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await d.room.wait()
                data = await d.src.read(CHUNK)
                self.proxy.bytes_received += len(data)
                d.put(loop.time() + self.proxy.delay_s, data)
                if not data:
                    return
        except OSError:
            self.close()

    async def _write(self, d: _Direction) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await d.queue.get()
                while (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                d.taken(data)
                if not data:   # src ended: what it sent before is forwarded now
                    break
                self.proxy.bytes_forwarded += len(data)
                d.dst.write(data)
                await d.dst.drain()
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        """Close both sides (gracefully, aborted after CLOSE_TIMEOUT_S); idempotent."""
        if self.closing is None:
            self.closing = asyncio.ensure_future(self._close())

    async def _close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*(_close_writer(w) for w in self.writers))
        self.proxy._links.discard(self)

    def abort(self) -> None:
        for t in self.tasks:
            t.cancel()
        for w in self.writers:
            w.transport.abort()
        self.proxy._links.discard(self)


async def _close_writer(w: asyncio.StreamWriter) -> None:
    w.close()
    try:
        await asyncio.wait_for(w.wait_closed(), CLOSE_TIMEOUT_S)
    except (asyncio.TimeoutError, OSError):
        w.transport.abort()


class DelayProxy:
    """A TCP proxy from 127.0.0.1:`port` to `upstream`, delaying every chunk by set_delay()."""

    def __init__(self, upstream_host: str, upstream_port: int, delay_ms: float = 0.0,
                 max_buffered: int = MAX_BUFFERED):
        self.upstream = (upstream_host, upstream_port)
        self.max_buffered = max_buffered
        self.port = 0
        self.delay_s = 0.0
        self.connections = 0
        self.bytes_received = 0
        self.bytes_forwarded = 0
        self._links: set[_Link] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.set_delay(delay_ms)

    def __enter__(self) -> "DelayProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"DelayProxy(127.0.0.1:{self.port} -> {self.upstream[0]}:{self.upstream[1]}, "
                f"delay {self.delay_s * 1000:.0f} ms, {self.connections} connections, "
                f"{self.bytes_forwarded} bytes forwarded)")

    def set_delay(self, ms: float) -> None:
        """From now on, forward what is read `ms` milliseconds later (0: at once)."""
        if ms < 0:
            raise ValueError(f"delay must be >= 0 ms, not {ms}")
        self.delay_s = ms / 1000.0

    def start(self) -> "DelayProxy":
        """Listen (port chosen now) and serve in a daemon thread; returns self."""
        with self._lock:
            if self._thread is not None or self._closed:
                raise RuntimeError("DelayProxy.start() called twice or after close()")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            self.port = sock.getsockname()[1]
            self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True,
                                            name=f"delay-proxy-{self.port}")
            self._thread.start()
        if not self._started.wait(START_TIMEOUT_S) or self._error is not None:
            self.close()
            raise RuntimeError(f"delay proxy on port {self.port} did not start: {self._error}")
        return self

    def close(self) -> None:
        """Stop listening, abort every connection, join the thread; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:   # the loop already ended
                pass
        thread.join(STOP_TIMEOUT_S)

    # -- the event loop's thread -----------------------------------------------------------
    def _run(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(sock))
        except BaseException as e:  # noqa: BLE001 - reported to start(), or lost at close
            self._error = e
        finally:
            self._started.set()
            sock.close()
            loop.close()

    async def _serve(self, sock: socket.socket) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, sock=sock)
        with self._lock:
            self._loop = asyncio.get_running_loop()
            closed = self._closed
        self._started.set()
        if not closed:
            await self._stop.wait()
        server.close()
        for link in list(self._links):
            link.abort()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await asyncio.sleep(0)   # the aborted transports close their sockets
        try:
            await asyncio.wait_for(server.wait_closed(), CLOSE_TIMEOUT_S)
        except asyncio.TimeoutError:
            pass

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream = await asyncio.wait_for(asyncio.open_connection(*self.upstream),
                                              CONNECT_TIMEOUT_S)
        except (asyncio.TimeoutError, OSError):
            writer.transport.abort()
            return
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        link = _Link(self, (reader, writer), upstream)
        self._links.add(link)
        link.start()
