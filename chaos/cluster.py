"""The chronik-server processes of one scenario.

Today a scenario runs one node; Cluster already holds a list of nodes and faults pick a node, so a
multi-node cluster (Raft, `--raft-addr` / `--peer`) only needs Node.command() to pass the peers and
Cluster to wait for a leader.  Disk faults act on a Node: through the server's test-only fault
layer (`--test-fault-injection true`, `PUT /test/faults`, see set_faults()) and on its data dir
while it is stopped (check_data_dir() runs `chronik-server check`).  Network-partition faults will
act on a Node too (its ports).

Every process the chaos run starts is tied to it: spawn() runs children under
`setpriv --pdeathsig KILL` (when available), so they get SIGKILL if the run dies, and the run keeps
a registry of its children and kills what is left when a scenario ends.  scripts/chaos.sh also runs
the whole run in its own process group and kills that group on exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0

_SETPRIV = shutil.which("setpriv")
_children: list[subprocess.Popen] = []


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def spawn(cmd: list[str], *, log_path: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """Start a child that dies with this process (SIGKILL via PR_SET_PDEATHSIG) and is registered
    for kill_children().  stdout and stderr are appended to log_path."""
    full = ([_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []) + cmd
    log = open(log_path, "ab", buffering=0)
    try:
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=str(cwd) if cwd else None)
    finally:
        log.close()
    _children.append(proc)
    return proc


def kill_children() -> None:
    """SIGKILL (works on SIGSTOPped processes too) and reap every child still running."""
    while _children:
        proc = _children.pop()
        if proc.poll() is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def reap(proc: subprocess.Popen) -> None:
    if proc in _children:
        _children.remove(proc)


def server_env() -> dict[str, str]:
    """Our environment minus any ambient CHRONIK_* setting: the server is configured by flags."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONIK_")}
    env["NO_COLOR"] = "1"
    env.setdefault("RUST_BACKTRACE", "1")
    return env


class NodeNotReady(Exception):
    pass


class Node:
    """One chronik-server process: fixed node id, ports and data dir across restarts."""

    def __init__(self, node_id: int, workdir: Path, binary: Path, extra_args: list[str]):
        self.node_id = node_id
        self.workdir = workdir
        self.binary = binary
        self.extra_args = list(extra_args)
        self.data_dir = workdir / f"node{node_id}" / "data"
        self.log_path = workdir / f"node{node_id}.log"
        self.kafka_port, self.http_port = free_ports(2)
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def command(self) -> list[str]:
        return [str(self.binary), "--node-id", str(self.node_id), "--data-dir", str(self.data_dir),
                "--kafka-addr", self.bootstrap, "--http-addr", f"127.0.0.1:{self.http_port}",
                *self.extra_args]

    # -- state -----------------------------------------------------------------------------
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exited_on_its_own(self) -> int | None:
        """The exit code if the process exited without being told to, else None."""
        if self.proc is not None and self.proc.poll() is not None:
            rc = self.proc.returncode
            self._forget()
            return rc
        return None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def ready(self) -> bool:
        return self.ready_status() == 200

    def ready_status(self) -> int | None:
        """The status of GET /health/ready (200 ready, 503 not ready), None if unreachable."""
        try:
            with urllib.request.urlopen(f"{self.http_url}/health/ready", timeout=1.0) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (OSError, urllib.error.URLError):
            return None

    def set_faults(self, **plan) -> str:
        """TEST ONLY: replace the active disk fault plan (fail_syncs, disk_full, torn_write_bytes,
        sync_delay_ms; missing keys = off) through PUT /test/faults; needs the node started with
        `--test-fault-injection true`.  Returns the plan as the server echoes it; raises on any
        answer but 200.  A restarted process starts with an empty plan."""
        query = "&".join(f"{k}={int(v)}" for k, v in plan.items())
        req = urllib.request.Request(f"{self.http_url}/test/faults?{query}", method="PUT")
        with urllib.request.urlopen(req, timeout=5.0) as r:
            if r.status != 200:
                raise RuntimeError(f"PUT /test/faults?{query}: HTTP {r.status}")
            return r.read().decode(errors="replace").strip()

    def check_data_dir(self, timeout: float = 120.0) -> subprocess.CompletedProcess:
        """`chronik-server check --data-dir` on this (stopped) node's data dir."""
        assert not self.running(), "check runs on a stopped node"
        return subprocess.run([str(self.binary), "check", "--data-dir", str(self.data_dir)],
                              capture_output=True, text=True, timeout=timeout,
                              env=server_env(), stdin=subprocess.DEVNULL)

    def log_since_last_start(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        mark = f"===== chaos: start #{self.starts} ====="
        return text[text.rfind(mark):] if mark in text else text

    def log_mark(self, text: str) -> None:
        with open(self.log_path, "ab") as f:
            f.write(f"\n===== chaos: {text} =====\n".encode())

    # -- control ---------------------------------------------------------------------------
    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        assert not self.running(), "already running"
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.log_mark(f"start #{self.starts}")
        self.proc = spawn(self.command(), log_path=self.log_path, env=server_env(), cwd=self.workdir)
        self.paused = False
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc is None or self.proc.poll() is not None:
                rc = None if self.proc is None else self.proc.returncode
                self._forget()
                raise NodeNotReady(f"node {self.node_id} exited with {rc} before becoming ready")
            if time.monotonic() > deadline:
                raise NodeNotReady(f"node {self.node_id} not ready {timeout:.0f} s after start")
            time.sleep(0.05)

    def kill9(self) -> None:
        if self.proc is not None:
            self.log_mark("SIGKILL")
            self.proc.kill()
            self.proc.wait(timeout=15)
            self._forget()
        self.paused = False

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM and wait; returns the exit code, or None if it had to be SIGKILLed."""
        if self.proc is None:
            return 0
        self.log_mark("SIGTERM")
        if self.paused:
            self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
            rc = None
        self._forget()
        return rc

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pass
            self._forget()

    def _forget(self) -> None:
        if self.proc is not None:
            reap(self.proc)
        self.proc = None

    def panics(self) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if "panicked at" in line]


class Cluster:
    """The nodes of a scenario (one today)."""

    def __init__(self, workdir: Path, binary: Path, size: int = 1, extra_args: list[str] = ()):
        if size != 1:
            raise NotImplementedError("multi-node clusters arrive with replication (Raft)")
        self.nodes = [Node(i + 1, workdir, binary, list(extra_args)) for i in range(size)]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def start(self) -> None:
        for n in self.nodes:
            n.start()

    def heal(self) -> None:
        """Undo every fault: resume paused nodes, start stopped ones (raises NodeNotReady)."""
        for n in self.nodes:
            if n.paused:
                n.resume()
            if not n.running():
                n.start()
            n.wait_ready()

    def close(self) -> None:
        for n in self.nodes:
            n.close()
