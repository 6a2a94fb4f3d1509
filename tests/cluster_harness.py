"""A cluster of real chronik-server processes for black-box tests of cluster mode (and for
compat/librdkafka.py --brokers 3, which runs without confluent-kafka: it is imported where used).

`Cluster` is N `harness.Server`s (created through the test's `server_factory`, so
teardown and the failure-report log tails work exactly as for single servers),
each started with `--node-id i --raft-addr ... --peer j=...` for every other voter.
Ports (Kafka, HTTP and Raft) and data dirs are fixed per node, so a node stopped
or killed and started again comes back on the same addresses and data.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import signal
from pathlib import Path

from harness import READY_TIMEOUT_S, Server, free_ports, http_get, wait_until
from kafka_wire import assert_serving

# How long a partition's replicas may take to agree on a (new) leader. Generous: elections
# normally take ~1-2 s, but repeated split votes can stretch them (see test_cluster.py).
LEADER_TIMEOUT_S = 60.0


class Cluster:
    def __init__(self, server_factory, size: int = 3, prefix: str = "node",
                 extra_args: list[str] | None = None):
        self.ids = list(range(1, size + 1))
        self.raft_ports = dict(zip(self.ids, free_ports(size)))
        self.nodes: dict[int, Server] = {}
        for i in self.ids:
            args = ["--raft-addr", self.raft_addr(i)] + list(extra_args or [])
            for j in self.ids:
                if j != i:
                    args += ["--peer", f"{j}={self.raft_addr(j)}"]
            self.nodes[i] = server_factory(name=f"{prefix}{i}", node_id=i, extra_args=args)
        self.paused_ids: set[int] = set()

    def __getitem__(self, node_id: int) -> Server:
        return self.nodes[node_id]

    def raft_addr(self, node_id: int) -> str:
        return f"127.0.0.1:{self.raft_ports[node_id]}"

    # -- start / stop ------------------------------------------------------
    def start(self, order: list[int] | None = None, timeout: float = READY_TIMEOUT_S) -> "Cluster":
        """Start the nodes one after another in `order` (each is serving Kafka requests, so it
        has bound its Raft listener, before the next is launched), then wait until all are ready.

        No node can be ready before a majority runs, so readiness is awaited only at the end.
        """
        order = list(order or self.ids)
        for i in order:
            self.launch(i)
        for i in order:
            self.nodes[i].wait_ready(timeout)
        return self

    def launch(self, node_id: int) -> Server:
        """Start one node without waiting for readiness; returns once it answers ApiVersions."""
        srv = self.nodes[node_id]
        srv.start(wait=False)
        wait_until(lambda: _serving(srv), timeout=READY_TIMEOUT_S, message=f"{srv.name} to serve Kafka")
        return srv

    def running(self) -> list[int]:
        return [i for i in self.ids if self.nodes[i].is_running()]

    def bootstrap(self, ids: list[int] | None = None) -> str:
        """Comma-separated Kafka addresses of `ids` (default: every running, non-paused node)."""
        if ids is None:
            ids = [i for i in self.running() if i not in self.paused_ids]
        return ",".join(self.nodes[i].bootstrap for i in ids)

    @contextlib.contextmanager
    def paused(self, ids: list[int]):
        """SIGSTOP the nodes for the body; they are always SIGCONTed afterwards."""
        stopped = []
        try:
            for i in ids:
                self.nodes[i].send_signal(signal.SIGSTOP)
                stopped.append(i)
                self.paused_ids.add(i)
            yield
        finally:
            for i in stopped:
                if self.nodes[i].is_running():
                    self.nodes[i].send_signal(signal.SIGCONT)
                self.paused_ids.discard(i)

    # -- topics and metadata ---------------------------------------------------
    def create_topic(self, topic: str, partitions: int, replication_factor: int = 3,
                     configs: dict[str, str] | None = None) -> dict[int, int]:
        """CreateTopics through the running nodes, then wait until every partition has a leader
        all running nodes agree on. Returns {partition: leader}."""
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap(), "socket.timeout.ms": 10000})
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor,
                      config=dict(configs or {}))],
            operation_timeout=15, request_timeout=15)
        futures[topic].result(timeout=30)
        return {p: self.wait_leader(topic, p) for p in range(partitions)}

    def leader_seen_by(self, node_id: int, topic: str, partition: int) -> int:
        """The partition leader according to the Metadata answer of node `node_id` (-1: none)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.nodes[node_id].bootstrap,
                             "socket.timeout.ms": 5000})
        md = admin.list_topics(topic=topic, timeout=5)
        t = md.topics.get(topic)
        if t is None or t.error is not None or partition not in t.partitions:
            return -1
        p = t.partitions[partition]
        return p.leader if p.error is None else -1

    def wait_leader(self, topic: str, partition: int, exclude: tuple[int, ...] = (),
                    timeout: float = LEADER_TIMEOUT_S) -> int:
        """Wait until every running, non-paused node's Metadata names the same leader (not one
        of `exclude`, and itself running); return its id."""
        def agreed():
            views = {i: self.leader_seen_by(i, topic, partition)
                     for i in self.running() if i not in self.paused_ids}
            leaders = set(views.values())
            if len(leaders) == 1:
                (leader,) = leaders
                if leader in self.running() and leader not in exclude:
                    return leader
            agreed.last = views
            return None

        agreed.last = {}
        try:
            return wait_until(agreed, timeout=timeout, interval=0.1,
                              message=f"an agreed leader of {topic}[{partition}]")
        except TimeoutError as e:
            raise TimeoutError(f"{e}; last views (node -> leader): {agreed.last}") from None

    def replica_sets(self, topic: str) -> dict[int, list[int]]:
        """{partition: replica set, preferred leader first}, from a running node's /cluster."""
        node = self.nodes[self.running()[0]]
        status, body = http_get(node.url("/cluster"))
        assert status == 200, f"GET /cluster: {status} {body}"
        return {p["partition"]: p["replicas"] for p in json.loads(body)["partitions"]
                if p["topic"] == topic}

    def partition_status(self, node_id: int, topic: str, partition: int) -> dict:
        """The partition's entry in node `node_id`'s GET /cluster (log start, high watermark,
        log end offset as that replica has them)."""
        status, body = http_get(self.nodes[node_id].url("/cluster"))
        assert status == 200, f"GET /cluster: {status} {body}"
        return next(p for p in json.loads(body)["partitions"]
                    if p["topic"] == topic and p["partition"] == partition)

    # -- data on disk ----------------------------------------------------------
    def partition_dir(self, node_id: int, topic: str, partition: int) -> Path:
        return self.nodes[node_id].data_dir / f"{topic}-{partition}"

    def segment_files(self, node_id: int, topic: str, partition: int) -> dict[str, bytes]:
        """{file name: contents} of the partition's segment files (*.log) on node `node_id`."""
        d = self.partition_dir(node_id, topic, partition)
        return {p.name: p.read_bytes() for p in sorted(d.glob("*.log"))}

    def segment_sizes(self, node_id: int, topic: str, partition: int) -> dict[str, int]:
        d = self.partition_dir(node_id, topic, partition)
        return {p.name: p.stat().st_size for p in sorted(d.glob("*.log"))}


_CANDIDATE = re.compile(r"^(\S+?)Z\s+INFO .*new candidate: \{T(\d+)-N(\d+):")


def _serving(srv: Server) -> bool:
    if not srv.is_running():
        # wait_ready reports the exit (and the log tail) for us
        srv.wait_ready(timeout=0)
    try:
        assert_serving(srv.bootstrap)
        return True
    except OSError:
        return False
