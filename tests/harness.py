"""Process-level harness for black-box tests of the real chronik-server binary.

Nothing here mocks the broker: every test talks to a real server process
over real sockets.  This module owns starting/stopping that process, picking
free ports, waiting for readiness, and collecting its log output.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# How long a freshly started server may take to report /health/ready.
READY_TIMEOUT_S = 30.0
# How long a server may take to exit after SIGTERM.
STOP_TIMEOUT_S = 30.0
# Interval between readiness polls (we poll a condition with a deadline).
POLL_INTERVAL_S = 0.05


def server_binary() -> Path:
    """Path of the server under test: $CHRONIK_BIN or target/release/chronik-server."""
    env = os.environ.get("CHRONIK_BIN")
    if env:
        return Path(env).resolve()
    return REPO_ROOT / "target" / "release" / "chronik-server"


def require_server_binary() -> Path:
    path = server_binary()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(
            f"chronik-server binary not found or not executable at {path}; "
            "run `cargo build --release` or set CHRONIK_BIN"
        )
    return path


# Ports this process has handed out: the kernel may give a released port to the next bind(0),
# so without this a cluster's Raft port picked for one node could come back as another node's
# HTTP port (seen once in CI: "cannot listen on http-addr ...: Address already in use").
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_ports(n: int) -> list[int]:
    """Return n distinct free TCP ports on 127.0.0.1 (bind to port 0, then release), none of
    them handed out before by this process."""
    with _handed_out_lock:
        socks = []
        try:
            ports: list[int] = []
            while len(ports) < n:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind(("127.0.0.1", 0))
                socks.append(s)  # kept bound until all are picked: no duplicates among them
                port = s.getsockname()[1]
                if port not in _handed_out:
                    ports.append(port)
            _handed_out.update(ports)
            return ports
        finally:
            for s in socks:
                s.close()


def free_port() -> int:
    return free_ports(1)[0]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET url; returns (status, body).  HTTP error statuses are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace") if e.fp is not None else ""
        return e.code, body


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a server process: ours minus any ambient CHRONIK_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONIK_")}
    env.setdefault("RUST_BACKTRACE", "1")
    env.setdefault("NO_COLOR", "1")  # plain server logs in failure reports
    if extra:
        env.update(extra)
    return env


class ServerExited(AssertionError):
    """The server process exited when it was expected to be running."""


class Server:
    """One chronik-server process on a fixed data dir and fixed ports.

    The ports and data dir are chosen once, so start() after stop()/kill9()
    restarts the server on the same data dir and the same addresses.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        extra_args: list[str] | tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        name: str = "chronik",
        addressing: str = "flags",
        node_id: int = 1,
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.node_id = node_id
        self.data_dir = Path(data_dir) if data_dir is not None else self.workdir / "data"
        self.kafka_port, self.http_port = free_ports(2)
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        # How node id, data dir and addresses reach the server:
        #   "flags"  -> --node-id/--data-dir/--kafka-addr/--http-addr
        #   "env"    -> CHRONIK_NODE_ID/CHRONIK_DATA_DIR/CHRONIK_KAFKA_ADDR/CHRONIK_HTTP_ADDR
        #   "config" -> a TOML file (snake_case keys) passed with --config
        if addressing not in ("flags", "env", "config"):
            raise ValueError(f"unknown addressing mode {addressing!r}")
        self.addressing = addressing
        self.config_path = self.workdir / f"{name}.toml"
        # extra TOML settings written to the config file in "config" mode
        self.config_extra: dict[str, object] = {}
        self.log_path = self.workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.start_count = 0
        self._log_file = None

    # -- addresses -------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def http(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def url(self, path: str) -> str:
        return f"http://{self.http}{path}"

    # -- process control -------------------------------------------------
    def command(self) -> list[str]:
        cmd = [str(require_server_binary())]
        if self.addressing == "flags":
            cmd += [
                "--node-id", str(self.node_id),
                "--data-dir", str(self.data_dir),
                "--kafka-addr", self.bootstrap,
                "--http-addr", self.http,
            ]
        elif self.addressing == "config":
            cmd += ["--config", str(self.config_path)]
        return cmd + self.extra_args

    def write_config(self) -> None:
        settings: dict[str, object] = {
            "node_id": self.node_id,
            "data_dir": str(self.data_dir),
            "kafka_addr": self.bootstrap,
            "http_addr": self.http,
        }
        settings.update(self.config_extra)
        lines = []
        for key, value in settings.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int):
                lines.append(f"{key} = {value}")
            else:
                escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
                lines.append(f'{key} = "{escaped}"')
        self.config_path.write_text("\n".join(lines) + "\n")

    def environment(self) -> dict[str, str]:
        extra = dict(self.extra_env)
        if self.addressing == "env":
            extra.setdefault("CHRONIK_NODE_ID", str(self.node_id))
            extra.setdefault("CHRONIK_DATA_DIR", str(self.data_dir))
            extra.setdefault("CHRONIK_KAFKA_ADDR", self.bootstrap)
            extra.setdefault("CHRONIK_HTTP_ADDR", self.http)
        return child_env(extra)

    def start(self, wait: bool = True, timeout: float = READY_TIMEOUT_S) -> "Server":
        if self.is_running():
            raise RuntimeError(f"{self.name} is already running (pid {self.proc.pid})")
        if self.addressing == "config":
            self.write_config()
        cmd = self.command()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.start_count += 1
        self._log_file = open(self.log_path, "ab", buffering=0)
        self._log_file.write(
            f"\n===== start #{self.start_count}: {' '.join(cmd)} =====\n".encode()
        )
        self.returncode = None
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            cwd=str(self.workdir),
        )
        if wait:
            self.wait_ready(timeout)
        return self

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Poll GET /health/ready until it answers 200; fail fast if the process dies."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            if self.proc is None:
                raise RuntimeError(f"{self.name} was never started")
            rc = self.proc.poll()
            if rc is not None:
                self._finish(rc)
                raise ServerExited(
                    f"{self.name} exited with code {rc} before becoming ready\n"
                    f"--- log tail ---\n{self.log_tail()}"
                )
            try:
                status, body = http_get(self.url("/health/ready"), timeout=1.0)
                if status == 200:
                    return
                last = f"HTTP {status}: {body[:200]!r}"
            except (OSError, urllib.error.URLError) as e:
                last = repr(e)
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self.name} not ready after {timeout}s (last: {last})\n"
                    f"--- log tail ---\n{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL_S)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit on its own; returns its exit code."""
        assert self.proc is not None
        rc = self.proc.wait(timeout=timeout)
        self._finish(rc)
        return rc

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Send sig and wait for exit.  Returns the exit code (negative = killed by signal).

        If the process does not exit within timeout it is SIGKILLed and an
        AssertionError is raised.
        """
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            self._finish(rc)
            raise AssertionError(
                f"{self.name} did not exit within {timeout}s after signal {sig}\n"
                f"--- log tail ---\n{self.log_tail()}"
            )
        self._finish(rc)
        return rc

    def send_signal(self, sig: int) -> None:
        """Send sig without waiting for anything (e.g. SIGSTOP/SIGCONT to freeze and thaw it).

        close() still ends a stopped process: SIGKILL also works on a stopped process.
        """
        if not self.is_running():
            raise RuntimeError(f"{self.name} is not running")
        self.proc.send_signal(sig)

    def kill9(self) -> int | None:
        """SIGKILL the server (simulated crash) and reap it."""
        return self.stop(signal.SIGKILL, timeout=15)

    def restart(self) -> "Server":
        self.stop()
        return self.start()

    def close(self) -> None:
        """Teardown: make sure the process is gone, whatever state it is in."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            self._finish(self.proc.poll())

    def _finish(self, rc: int | None) -> None:
        self.returncode = rc
        self.proc = None
        if self._log_file is not None:
            try:
                self._log_file.write(f"===== exited with {rc} =====\n".encode())
            finally:
                self._log_file.close()
                self._log_file = None

    # -- logs --------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 80) -> str:
        text = self.log_text().splitlines()
        return "\n".join(text[-lines:])


def run_server_to_exit(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 20.0, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run the server binary with args and wait for it to exit on its own.

    Used for tests that expect the server to refuse to start.  If it is still
    running after timeout it is killed and an AssertionError is raised.
    """
    cmd = [str(require_server_binary())] + list(args)
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(env),
        cwd=str(cwd) if cwd else None,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"{cmd} was still running after {timeout}s (expected it to exit)\n"
            f"stdout: {out.decode(errors='replace')[-2000:]}\n"
            f"stderr: {err.decode(errors='replace')[-2000:]}"
        )
    return subprocess.CompletedProcess(
        cmd, proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    )


def wait_until(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll predicate() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
