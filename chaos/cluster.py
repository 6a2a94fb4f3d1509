"""The chronik-server processes of one scenario.

A Cluster is one node (the single-node scenarios) or several (the cluster-* scenarios): each node
then runs with `--raft-addr` and one `--peer ID=ADDR` per other voter (Node.command()), all ports
(Kafka, HTTP, Raft) allocated at once and fixed across restarts.  A cluster is ready when every
node answers /health/ready 200 (it knows the controller leader and is registered); the harness then
waits for conditions it reads from the nodes' `GET /cluster` (every partition's leader, high
watermark, log end offset): Cluster.wait_leader() (every running, non-paused node names the same
live leader of a partition), wait_stable() (so for every partition) and wait_caught_up() (a node's
log end offsets reached the leaders' high watermarks).  A condition not reached in time raises
NoLeader / NotCaughtUp (kinds of NodeNotReady, recorded as server-failure).  Disk faults act on a
Node: through the server's test-only fault layer (`--test-fault-injection true`, `PUT
/test/faults`, see set_faults()) and on its data dir while it is stopped (check_data_dir() runs
`chronik-server check`).  With a Network (chaos/netns.py) each node runs in its own network
namespace, on its own address (fixed ports), and network-partition faults cut links between them.

Every process the chaos run starts is tied to it: spawn() runs children under
`setpriv --pdeathsig KILL` (when available), so they get SIGKILL if the run dies, and the run keeps
a registry of its children and kills what is left when a scenario ends.  scripts/chaos.sh also runs
the whole run in its own process group and kills that group on exit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from chaos.netns import Network
from chaos.proxy import DelayProxy

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
# How long the partitions of a cluster may take to agree on a (new) leader, and a restarted node
# to catch up.  Generous (an election normally takes ~2 s: the leader lease, 1 s, plus an election
# timeout of 0.5-1 s): these are about progress on a shared 2-core machine, not latency.
LEADER_TIMEOUT_S = 30.0
CATCH_UP_TIMEOUT_S = 60.0

# The ports of a node in its own network namespace (its own address: no clash).
NETNS_KAFKA_PORT, NETNS_HTTP_PORT, NETNS_RAFT_PORT = 9092, 8080, 5001

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
    def __init__(self, msg: str, node_id: int | None = None):
        super().__init__(msg)
        self.node_id = node_id


class NoLeader(NodeNotReady):
    """The running nodes did not agree on a live leader of a partition in time."""


class NotCaughtUp(NodeNotReady):
    """A restarted node did not catch up with the partition leaders in time."""


class Node:
    """One chronik-server process: fixed node id, ports and data dir across restarts."""

    def __init__(self, node_id: int, workdir: Path, binary: Path, extra_args: list[str],
                 ports: tuple[int, int] | None = None, raft_port: int | None = None,
                 host: str = "127.0.0.1", prefix: list[str] = ()):
        self.node_id = node_id
        self.host = host                         # the address every listener binds
        self.prefix = list(prefix)               # e.g. `ip netns exec NS` (chaos/netns.py)
        self.workdir = workdir
        self.binary = binary
        self.extra_args = list(extra_args)
        self.data_dir = workdir / f"node{node_id}" / "data"
        self.log_path = workdir / f"node{node_id}.log"
        self.kafka_port, self.http_port = ports or free_ports(2)
        self.raft_port = raft_port               # cluster mode only
        self.peers: dict[int, str] = {}          # the other voters: node id -> Raft address
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def raft_addr(self) -> str:
        return f"{self.host}:{self.raft_port}"

    def command(self) -> list[str]:
        cmd = self.prefix + [
            str(self.binary), "--node-id", str(self.node_id), "--data-dir", str(self.data_dir),
            "--kafka-addr", self.bootstrap, "--http-addr", f"{self.host}:{self.http_port}"]
        if self.raft_port is not None:
            cmd += ["--raft-addr", self.raft_addr]
            for peer, addr in sorted(self.peers.items()):
                cmd += ["--peer", f"{peer}={addr}"]
        return cmd + self.extra_args

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
        return f"http://{self.host}:{self.http_port}"

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

    def cluster_status(self) -> dict | None:
        """GET /cluster (cluster mode): node id, controller leader, brokers, and every partition the
        node hosts with its leader, leader epoch, replicas, offsets.  None if unreachable."""
        if not self.running() or self.paused:
            return None
        try:
            with urllib.request.urlopen(f"{self.http_url}/cluster", timeout=2.0) as r:
                return json.loads(r.read())
        except (OSError, urllib.error.URLError, ValueError):
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
    def start(self, timeout: float = READY_TIMEOUT_S, wait: bool = True) -> None:
        """Start the process; with wait, until /health/ready is 200 (a cluster node: once a
        majority of the voters runs)."""
        assert not self.running(), "already running"
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.log_mark(f"start #{self.starts}")
        self.proc = spawn(self.command(), log_path=self.log_path, env=server_env(), cwd=self.workdir)
        self.paused = False
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc is None or self.proc.poll() is not None:
                rc = None if self.proc is None else self.proc.returncode
                self._forget()
                raise NodeNotReady(f"node {self.node_id} exited with {rc} before becoming ready",
                                   self.node_id)
            if time.monotonic() > deadline:
                raise NodeNotReady(f"node {self.node_id} not ready within {timeout:.0f} s",
                                   self.node_id)
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
    """The nodes of a scenario: one, or several forming a Raft cluster (each started with
    `--raft-addr` and a `--peer` per other voter)."""

    def __init__(self, workdir: Path, binary: Path, size: int = 1, extra_args: list[str] = (),
                 network: Network | None = None, peer_proxies: bool = False):
        self.network = network
        # With peer_proxies: every peer link i -> j goes through a DelayProxy (chaos/proxy.py) of
        # its own (node i's --peer j= names the proxy), so that links can be slowed one by one.
        self.links: dict[tuple[int, int], DelayProxy] = {}
        if size == 1:
            self.nodes = [Node(1, workdir, binary, list(extra_args))]
            return
        if network is not None:
            # Own address per node: the same fixed ports everywhere.
            self.nodes = [Node(i, workdir, binary, list(extra_args),
                               ports=(NETNS_KAFKA_PORT, NETNS_HTTP_PORT), raft_port=NETNS_RAFT_PORT,
                               host=network.ip(i), prefix=network.exec_prefix(i))
                          for i in range(1, size + 1)]
        else:
            ports = free_ports(3 * size)   # all at once: no port handed out twice
            self.nodes = [Node(i + 1, workdir, binary, list(extra_args),
                               ports=(ports[3 * i], ports[3 * i + 1]), raft_port=ports[3 * i + 2])
                          for i in range(size)]
        for n in self.nodes:
            n.peers = {m.node_id: m.raft_addr for m in self.nodes if m is not n}
        if peer_proxies:
            try:
                for n in self.nodes:
                    for m in self.nodes:
                        if m is not n:
                            link = DelayProxy(m.host, m.raft_port).start()
                            self.links[(n.node_id, m.node_id)] = link
                            n.peers[m.node_id] = f"127.0.0.1:{link.port}"
            except BaseException:
                for link in self.links.values():
                    link.close()
                raise

    def slow_links(self, node_id: int, delay_ms: float) -> None:
        """Delay every peer link to and from node_id by delay_ms (0: back to normal)."""
        for (a, b), link in self.links.items():
            if node_id in (a, b):
                link.set_delay(delay_ms)

    @property
    def multi(self) -> bool:
        return len(self.nodes) > 1

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id - 1]

    def start(self) -> None:
        """Start every node; a cluster node cannot be ready before a majority runs, so all are
        launched first and readiness is awaited afterwards.  With a Network, it is created
        first (raises NetworkUnavailable where namespaces cannot be made)."""
        if self.network is not None and not self.network.created:
            self.network.create()
        for n in self.nodes:
            n.start(wait=not self.multi)
        for n in self.nodes:
            n.wait_ready()

    def heal(self) -> None:
        """Undo every fault: resume paused nodes, start stopped ones (raises NodeNotReady), and in a
        cluster wait until every partition has an agreed leader (raises NoLeader)."""
        for n in self.nodes:
            if n.paused:
                n.resume()
            if not n.running():
                n.start(wait=not self.multi)
        for n in self.nodes:
            n.wait_ready()
        if self.multi:
            self.wait_stable()

    def close(self) -> None:
        for n in self.nodes:
            n.close()
        for link in self.links.values():
            link.close()
        if self.network is not None:
            self.network.close()

    # -- cluster state, from GET /cluster ------------------------------------------------------
    def live(self) -> list[Node]:
        """The nodes that can answer: running and not paused."""
        return [n for n in self.nodes if n.running() and not n.paused]

    def views(self) -> dict[int, dict[tuple[str, int], dict]]:
        """{node id: {(topic, partition): its /cluster entry}} of every live node that answered."""
        out = {}
        for n in self.live():
            st = n.cluster_status()
            if st is not None:
                out[n.node_id] = {(p["topic"], p["partition"]): p for p in st.get("partitions", [])}
        return out

    def _agreed(self, views: dict, key: tuple[str, int], exclude: tuple[int, ...],
                among: tuple[int, ...] | None = None) -> int | None:
        live = {n.node_id for n in self.live()}
        if among is not None:   # only these nodes' views count (the majority side of a partition)
            live &= set(among)
            views = {i: v for i, v in views.items() if i in live}
        if not views or set(views) != live:
            return None
        leaders = {v.get(key, {}).get("leader") for v in views.values()}
        if len(leaders) != 1:
            return None
        (leader,) = leaders
        return leader if leader in live and leader not in exclude else None

    def leader_of(self, topic: str, partition: int) -> int | None:
        """The leader every live node names for the partition now (None: no agreement)."""
        return self._agreed(self.views(), (topic, partition), ())

    def wait_leader(self, topic: str, partition: int, exclude: tuple[int, ...] = (),
                    timeout: float = LEADER_TIMEOUT_S, among: tuple[int, ...] | None = None) -> int:
        """Wait until every live node (of `among`, if given) names the same live leader of the
        partition, not one of exclude; return its id (raises NoLeader)."""
        deadline = time.monotonic() + timeout
        while True:
            views = self.views()
            leader = self._agreed(views, (topic, partition), exclude, among)
            if leader is not None:
                return leader
            if time.monotonic() > deadline:
                seen = {i: v.get((topic, partition), {}).get("leader") for i, v in views.items()}
                raise NoLeader(f"no agreed live leader of {topic}[{partition}]"
                               f"{f' other than node {exclude}' if exclude else ''} within "
                               f"{timeout:.0f} s; views (node -> leader): {seen}")
            time.sleep(0.1)

    def wait_stable(self, timeout: float = LEADER_TIMEOUT_S,
                    topic: str | None = None) -> dict[tuple[str, int], int]:
        """Wait until every live node hosts the same partitions and names the same live leader for
        each (every partition, or those of `topic`); returns {(topic, partition): leader} (raises
        NoLeader)."""
        deadline = time.monotonic() + timeout
        while True:
            views = self.views()
            if topic is not None:
                views = {i: {k: e for k, e in v.items() if k[0] == topic} for i, v in views.items()}
            keys = {k for v in views.values() for k in v}
            leaders = {k: self._agreed(views, k, ()) for k in keys}
            if views and all(set(v) == keys for v in views.values()) and all(
                    x is not None for x in leaders.values()):
                return leaders
            if time.monotonic() > deadline:
                bad = {f"{t}[{p}]": {i: v.get((t, p), {}).get("leader") for i, v in views.items()}
                       for (t, p), x in sorted(leaders.items()) if x is None}
                raise NoLeader(f"partitions without an agreed live leader {timeout:.0f} s after "
                               f"healing: {dict(list(bad.items())[:5])} "
                               f"(live nodes answering: {sorted(views)})")
            time.sleep(0.1)

    def wait_caught_up(self, node: Node, timeout: float = CATCH_UP_TIMEOUT_S,
                       topic: str | None = None) -> float:
        """Wait until `node`'s log end offset of every partition it hosts (or of `topic`'s) reached
        the high watermark the partition's leader reported when the wait began; returns the
        seconds waited (raises NotCaughtUp / NoLeader)."""
        t0 = time.monotonic()
        leaders = self.wait_stable(topic=topic)
        views = self.views()
        target = {k: views[leader][k]["high_watermark"] for k, leader in leaders.items()
                  if leader != node.node_id and leader in views and k in views[leader]}
        while True:
            st = node.cluster_status()
            mine = {(p["topic"], p["partition"]): p for p in (st or {}).get("partitions", [])}
            behind = {f"{t}[{p}]": [mine.get((t, p), {}).get("log_end_offset"), hw]
                      for (t, p), hw in sorted(target.items())
                      if mine.get((t, p), {}).get("log_end_offset", -1) < hw}
            if st is not None and not behind:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise NotCaughtUp(f"node {node.node_id} not caught up {timeout:.0f} s after its "
                                  f"restart: {{partition: [its log end, leader's high watermark]}} = "
                                  f"{dict(list(behind.items())[:5])}", node.node_id)
            time.sleep(0.1)
