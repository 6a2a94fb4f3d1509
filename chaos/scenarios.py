"""Scenarios: a fault mix on a standard workload, run against fresh server processes.

Every scenario:
  1. starts its cluster (one node, or three for the cluster-* scenarios: Raft, each node naming
     the other two as peers) on fresh data dirs and free ports, from a private copy of the server
     binary, and creates a topic of PARTITIONS partitions (replication factor 3 in a cluster; the
     run then waits until every node names the same leader for each partition);
  2. starts the workload: 2 confluent-kafka group consumers (group "chaos", read_committed,
     committing every polled batch), then 3 producers:
        ck-idem     confluent-kafka, enable.idempotence=true, acks=all
        ck-acks1    confluent-kafka, not idempotent, acks=1, retries on (librdkafka's default)
        kp-default  kafka-python with its defaults (idempotent, acks=all)
     and, in every scenario with txn=True (all but corrupt-segment), a fourth:
        ck-txn      confluent-kafka, transactional (transactional.id unique per run, so
                    idempotent; acks=all): transactions of 2-6 messages over the partitions,
                    a seeded quarter of them aborted (chaos/workloads.py: run_txn_producer);
                    the group consumers then also commit their positions when idle (past the
                    transaction markers)
  3. runs the seeded fault schedule for the load duration (faults in a window after a warm-up);
     a scenario with disk faults runs the server with its test-only fault layer
     (--test-fault-injection true); one with corruptions makes the consumers reset offsets
     explicitly (recorded seeks) instead of librdkafka's silent auto.offset.reset;
  4. heals every fault, stops the producers (final flush: unanswered sends become unknown), waits
     for the group to commit up to the high watermarks, stops the consumers, reads the committed
     offsets back, drains every partition from offset 0 with manual assignment (read_committed;
     with ck-txn also a second drain, read_uncommitted, which must find the aborted records in
     the log), and stops the server(s) with SIGTERM, one after another (expecting exit 0);
  5. merges every process's events into one History and checks it (chaos/checker.py).
Processes are always killed at the end, whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from chaos import faults, segments, workloads
from chaos.cluster import Cluster, NodeNotReady, NoLeader, kill_children, spawn
from chaos.history import History, load_events_file
from chaos.netns import Network

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 3
GROUP = "chaos"


@dataclass(frozen=True)
class Mode:
    duration_s: float       # load duration (faults happen within it)
    faults_from_s: float    # fault window, seconds after the load started
    faults_until_s: float
    rate: float             # messages per second per producer
    flush_s: float          # producers' final flush
    catchup_s: float        # bound on waiting for the group to commit everything
    drain_s: float          # bound on the final drain
    txn_rate: float = 20    # transactions per second of the transactional producer


MODES = {
    "quick": Mode(duration_s=14, faults_from_s=3, faults_until_s=11, rate=250, flush_s=10,
                  catchup_s=20, drain_s=30),
    "long": Mode(duration_s=120, faults_from_s=5, faults_until_s=110, rate=300, flush_s=20,
                 catchup_s=40, drain_s=60),
}


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    faults: tuple[str, ...] = ()                       # fault kinds the schedule draws from
    counts: dict[str, int] = field(default_factory=dict)  # mode -> number of faults
    nodes: int = 1                                     # 3: a Raft cluster
    txn: bool = True                                   # run the transactional producer ck-txn


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("baseline", "no fault: the workload and the checks on a healthy server"),
    Scenario("kill9-repeated", "kill -9 the node repeatedly under load, restart it each time",
             ("kill9",), {"quick": 3, "long": 14}),
    Scenario("pause", "SIGSTOP the node for seconds, then SIGCONT, several times",
             ("pause",), {"quick": 2, "long": 8}),
    Scenario("rolling-restart", "SIGTERM (clean shutdown) and restart the node under load",
             ("term",), {"quick": 2, "long": 8}),
    Scenario("mixed", "a seeded mix of kill -9, pause and SIGTERM restarts",
             ("kill9", "pause", "term"), {"quick": 3, "long": 14}),
    Scenario("fsync-eio", "every fsync fails (EIO) for seconds under load: logs go offline, node "
             "unready; kill -9, restart", ("fsync-eio",), {"quick": 1, "long": 5}),
    Scenario("disk-full", "every write fails (ENOSPC, torn prefix) for seconds under load, then "
             "space returns", ("disk-full",), {"quick": 2, "long": 8}),
    Scenario("slow-disk", "fsyncs 50-200 ms slower for seconds under load",
             ("slow-disk",), {"quick": 1, "long": 4}),
    Scenario("corrupt-segment", "SIGTERM, flip a byte in (or truncate) a batch mid-segment, check, "
             "restart: the rest of that log is lost by design", ("corrupt-segment",),
             {"quick": 1, "long": 3}, txn=False),
    Scenario("cluster-kill-leader", "3 nodes: kill -9 the leader of a partition, wait for the "
             "failover, restart it; repeatedly", ("kill9-leader",), {"quick": 2, "long": 10},
             nodes=3),
    Scenario("cluster-kill-follower", "3 nodes: kill -9 a follower of a partition for seconds, "
             "restart it, wait until it caught up", ("kill9-follower",), {"quick": 2, "long": 8},
             nodes=3),
    Scenario("cluster-pause-leader", "3 nodes: SIGSTOP the leader of a partition until the others "
             "elected a new one and for seconds more, SIGCONT", ("pause-leader",),
             {"quick": 2, "long": 8}, nodes=3),
    Scenario("cluster-rolling-restart", "3 nodes: SIGTERM and restart each node in turn under "
             "load, waiting until it caught up", ("term-rolling",), {"quick": 3, "long": 9},
             nodes=3),
    Scenario("cluster-kill-random", "3 nodes: kill -9 a random node (seeded), restart it; "
             "repeatedly", ("kill9-random",), {"quick": 3, "long": 14}, nodes=3),
    Scenario("cluster-slow-follower", "3 nodes: a follower of a partition gets fsyncs 50-200 ms "
             "slower and its peer links 50-300 ms of delay each way for seconds; then it must "
             "catch up", ("slow-follower",), {"quick": 2, "long": 6}, nodes=3),
    Scenario("cluster-fsync-eio", "3 nodes: every fsync of a partition's leader fails (EIO): it "
             "must exit 1, the others take over; restart it, it must catch up",
             ("fsync-eio-leader",), {"quick": 1, "long": 5}, nodes=3),
    Scenario("cluster-disk-full", "3 nodes: the disk of a partition's follower is full (ENOSPC "
             "after a torn prefix): it must exit 1, the others go on; restart it, it must catch up",
             ("disk-full-follower",), {"quick": 1, "long": 5}, nodes=3),
    Scenario("cluster-corrupt-replica", "3 nodes: SIGTERM a follower, flip a byte in (or "
             "truncate) a batch mid-segment of its copy of a partition, check, restart: it must "
             "repair its copy from the others, nothing lost", ("corrupt-replica",),
             {"quick": 1, "long": 4}, nodes=3),
    Scenario("cluster-kill-all", "3 nodes: kill -9 every node at once, restart them all; "
             "repeatedly", ("kill9-all",), {"quick": 2, "long": 8}, nodes=3),
    Scenario("cluster-partition-leader", "3 nodes in network namespaces: cut the leader of a "
             "partition off from the other two for seconds (clients still reach it), heal",
             ("partition-leader",), {"quick": 2, "long": 8}, nodes=3),
    Scenario("cluster-partition-node", "3 nodes in network namespaces: majority / minority, a "
             "seeded node cut off from the other two for seconds, heal",
             ("partition-node",), {"quick": 2, "long": 8}, nodes=3),
    Scenario("cluster-partition-bridge", "3 nodes in network namespaces: two nodes cannot reach "
             "each other, the third (the bridge) reaches both, for seconds; heal",
             ("partition-bridge",), {"quick": 2, "long": 8}, nodes=3),
    Scenario("cluster-partition-flap", "3 nodes in network namespaces: links cut and healed "
             "every 0.2-1.5 s (a node isolated or one link cut), for seconds",
             ("partition-flap",), {"quick": 1, "long": 5}, nodes=3),
]}
DEFAULT = {"quick": ["baseline", "kill9-repeated", "pause", "rolling-restart", "fsync-eio",
                     "corrupt-segment", "cluster-kill-leader", "cluster-pause-leader",
                     "cluster-kill-all", "cluster-slow-follower", "cluster-fsync-eio",
                     "cluster-disk-full", "cluster-corrupt-replica", "cluster-partition-leader",
                     "cluster-partition-flap"],
           "long": ["baseline", "kill9-repeated", "pause", "rolling-restart", "mixed", "fsync-eio",
                    "disk-full", "slow-disk", "corrupt-segment", "cluster-kill-leader",
                    "cluster-kill-follower", "cluster-pause-leader", "cluster-rolling-restart",
                    "cluster-kill-random", "cluster-kill-all", "cluster-slow-follower",
                    "cluster-fsync-eio", "cluster-disk-full", "cluster-corrupt-replica",
                    "cluster-partition-leader",
                    "cluster-partition-node",
                    "cluster-partition-bridge", "cluster-partition-flap"]}


def resolve(name: str) -> Scenario:
    """A scenario by name; "a+b" combines scenarios (their fault kinds, the sum of their counts)."""
    parts = name.split("+")
    for p in parts:
        if p not in SCENARIOS:
            raise KeyError(f"unknown scenario {p!r} (known: {', '.join(SCENARIOS)})")
    if len(parts) == 1:
        return SCENARIOS[name]
    kinds: list[str] = []
    counts: dict[str, int] = {}
    for p in parts:
        s = SCENARIOS[p]
        kinds += [k for k in s.faults if k not in kinds]
        for m, n in s.counts.items():
            counts[m] = counts.get(m, 0) + n
    nodes = {SCENARIOS[p].nodes for p in parts}
    if len(nodes) > 1:
        raise KeyError(f"cannot combine single-node and cluster scenarios ({name})")
    return Scenario(name, "combined: " + " + ".join(parts), tuple(kinds), counts, nodes.pop(),
                    txn=all(SCENARIOS[p].txn for p in parts))


for _s in SCENARIOS.values():   # a cluster fault needs a cluster
    assert all(faults.FAULTS[k].min_nodes <= _s.nodes for k in _s.faults), _s.name


def producer_configs(txn: bool = False, tag: str = "", seed: str = "",
                     txn_rate: float = 20) -> list[dict[str, Any]]:
    """The producers of a scenario; with txn also the transactional ck-txn (its transactional.id
    unique per run, its commit / abort draws seeded by `seed`)."""
    out = [
        {"name": "ck-idem", "client": "confluent-kafka",
         "conf": {"enable.idempotence": True, "acks": "all"}},
        {"name": "ck-acks1", "client": "confluent-kafka",
         "conf": {"enable.idempotence": False, "acks": "1"}},
        {"name": "kp-default", "client": "kafka-python", "conf": {}},
    ]
    if txn:
        out.append({"name": "ck-txn", "client": "confluent-kafka",
                    "transactional_id": f"chaos-{tag}-ck-txn", "seed": f"{seed}/ck-txn",
                    "txn_rate": txn_rate, "txn_size": [2, 6], "abort_ratio": 0.25})
    return out


def create_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30,
                 replication_factor: int = 1) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                  replication_factor=replication_factor)],
                        operation_timeout=15, request_timeout=15)[topic].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        t = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
                p.leader >= 0 for p in t.partitions.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} not visible with {partitions} partitions")
        time.sleep(0.1)


class Procs:
    """Workload processes of a scenario."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen] = {}
        self.events: dict[str, Path] = {}

    def start(self, role: str, cfg: dict[str, Any]) -> None:
        name = cfg["name"]
        cfg = dict(cfg, events=str(self.workdir / f"{name}.events"))
        self.events[name] = Path(cfg["events"])
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self.procs[name] = spawn([sys.executable, "-m", "chaos.workloads", role, json.dumps(cfg)],
                                 log_path=self.workdir / f"{name}.log", env=env, cwd=ROOT)

    def stack_of(self, name: str, timeout: float = 5.0) -> str:
        """Where a hung workload is: it dumps its threads' stacks into its log on SIGUSR1
        (faulthandler); returns the innermost frames of the thread that was running."""
        log_path = self.workdir / f"{name}.log"
        before = log_path.stat().st_size
        self.procs[name].send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(log_path, "rb") as f:
                f.seek(before)
                dump = f.read().decode(errors="replace")
            current = dump.split("Current thread", 1)
            frames = ([line.strip() for line in current[1].split("\n\n", 1)[0].splitlines()
                       if line.strip().startswith("File ")] if len(current) == 2 else [])
            # Innermost first; complete once it reaches the module (or shows enough of it).
            if len(frames) >= 4 or any(f.endswith(" in <module>") for f in frames):
                return " <- ".join(frames[:4])
            time.sleep(0.05)
        return f"(no stack dump within {timeout:.0f} s)"

    def stop(self, names: list[str], timeout: float) -> list[str]:
        """SIGTERM names, wait; returns problems (killed after timeout, non-zero exit)."""
        problems = []
        for n in names:
            if self.procs[n].poll() is None:
                self.procs[n].terminate()
        deadline = time.monotonic() + timeout
        for n in names:
            p = self.procs[n]
            try:
                rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                where = self.stack_of(n)
                p.kill()
                p.wait()
                problems.append(f"{n} did not stop within {timeout:.0f} s of SIGTERM; killed; "
                                f"it was in {where}")
                continue
            if rc != 0:
                tail = (self.workdir / f"{n}.log").read_text(errors="replace").splitlines()[-5:]
                problems.append(f"{n} exited with {rc}: {' | '.join(tail)}")
        return problems


def run_scenario(sc: Scenario, mode_name: str, seed: int, binary: Path,
                 log: Callable[[str], None]) -> tuple[History, Path]:
    """Run one scenario; returns its history (merged, sorted) and its work dir (logs, data), which
    the caller removes."""
    mode = MODES[mode_name]
    workdir = Path(tempfile.mkdtemp(prefix=f"chronik-chaos-{sc.name}-"))
    tag = uuid.uuid4().hex[:8]
    topic = f"chaos-{tag}"
    planned = faults.plan(seed, sc.name, list(sc.faults), sc.counts.get(mode_name, 0),
                          mode.faults_from_s, mode.faults_until_s, nodes=sc.nodes, mode=mode_name)
    h = History({
        "scenario": sc.name, "description": sc.description, "mode": mode_name, "seed": seed,
        "nodes": sc.nodes,
        "topic": topic, "partitions": PARTITIONS, "group": GROUP, "run_tag": tag,
        "planned_faults": [f.describe() for f in planned], "drain_required": True,
        "binary": str(binary), "binary_mtime": os.path.getmtime(binary),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "workdir": str(workdir), "harness_errors": [],
    })

    def emit(type: str, t: float | None = None, **fields) -> None:
        h.add(type, time.monotonic() if t is None else t, **fields)

    def harness_error(msg: str) -> None:
        log(f"harness: {msg}")
        h.meta["harness_errors"].append(msg)

    # A private copy of the binary: a rebuild during the run changes nothing here.
    private = workdir / "chronik-server"
    shutil.copy2(binary, private)
    server_args = ["--group-initial-rebalance-delay-ms", "0"]
    if any(faults.FAULTS[k].needs_fault_layer for k in sc.faults):
        server_args += ["--test-fault-injection", "true"]
    h.meta["server_args"] = server_args
    # Network faults: every node in its own network namespace (created when the cluster starts).
    network = (Network(sc.nodes) if any(faults.FAULTS[k].needs_network for k in sc.faults)
               else None)
    h.meta["network"] = "namespaces" if network is not None else "loopback"
    proxies = any(faults.FAULTS[k].needs_proxies for k in sc.faults)
    if proxies and network is not None:
        raise ValueError(f"{sc.name}: peer proxies and network namespaces do not combine")
    h.meta["peer_links"] = "proxied" if proxies else "direct"
    cluster = Cluster(workdir, private, sc.nodes, server_args, network=network,
                      peer_proxies=proxies)
    procs = Procs(workdir)
    consumers = ["ck-group-1", "ck-group-2"]
    producers = producer_configs(sc.txn, tag, f"{seed}/{sc.name}", mode.txn_rate)
    h.meta["transactions"] = sc.txn
    for c in consumers:
        h.add_consumer(c, "confluent-kafka", kind="group", group=GROUP, isolation="read_committed")
    h.add_consumer("drain", "confluent-kafka", kind="drain", isolation="read_committed")
    if sc.txn:
        h.add_consumer("drain-uncommitted", "confluent-kafka", kind="drain",
                       isolation="read_uncommitted")
    # A corruption cuts a log below the consumers' positions: they then reset explicitly (a seek
    # event) rather than silently (auto.offset.reset), so the checker sees every rewind.
    reset = "seek" if any(faults.FAULTS[k].cuts_logs for k in sc.faults) else "auto"
    h.meta["consumer_reset"] = reset
    caught_up = False
    try:
        try:
            caught_up = _run(mode, planned, cluster, procs, topic, tag, consumers, producers, emit,
                             harness_error, log, reset, sc.txn)
        except NodeNotReady as e:
            emit("server", node=e.node_id, what="not-ready", detail=str(e))
        except Exception as e:  # noqa: BLE001 - anything else is a harness problem: report, go on
            harness_error(f"{type(e).__name__}: {e}")
        return _finish(h, procs, cluster, workdir, read_replicas=caught_up)
    except BaseException:  # interrupted (SIGINT / SIGTERM): leave nothing behind
        kill_children()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        kill_children()
        cluster.close()


def _run(mode, planned, cluster, procs, topic, tag, consumers, producers, emit, harness_error,
         log, reset, txn=False) -> bool:
    """The scenario up to the final drain; True if it got that far in a cluster whose replicas
    all caught up with their leaders (then _finish reads them back)."""
    cluster.start()
    create_topic(cluster.bootstrap, topic, PARTITIONS,
                 replication_factor=min(3, len(cluster.nodes)))
    if cluster.multi:
        leaders = {p: cluster.wait_leader(topic, p) for p in range(PARTITIONS)}
        emit("note", text=f"cluster of {len(cluster.nodes)} nodes; leaders of {topic}: {leaders}")
    common = {"bootstrap": cluster.bootstrap, "topic": topic, "partitions": PARTITIONS,
              "max_s": mode.duration_s + 300}
    for c in consumers:
        procs.start("consumer", dict(common, name=c, group=GROUP, reset=reset,
                                     isolation="read_committed", commit_position=txn))
    for p in producers:
        procs.start("producer", dict(common, **p, tag=tag, rate=mode.rate, flush_s=mode.flush_s))
    t_load = time.monotonic()
    emit("note", text=f"load started; planned faults: {[f.describe() for f in planned]}")
    try:
        faults.run_schedule(planned, cluster, emit, t_load, mode.duration_s, log,
                            {"topic": topic, "partitions": PARTITIONS})
    except NodeNotReady as e:
        log(f"fault schedule stopped: {e}")
    emit("note", text="load phase over; healing")
    for node in cluster.nodes:
        rc = node.exited_on_its_own()
        if rc is not None:
            emit("server", node=node.node_id, what="exited", detail=f"exited on its own with {rc}")
    try:
        cluster.heal()
    except NoLeader as e:
        # Every node is up, but some partition has no agreed leader (a server failure): the run
        # goes on, so that the final drain still decides lost / duplicate / ... for the topic.
        emit("server", node=None, what="no-leader", detail=f"after healing: {e}")
        log(f"no agreed leaders after healing: {e}")

    log("stopping producers")
    for problem in procs.stop([p["name"] for p in producers], mode.flush_s + 20):
        harness_error(problem)
    log("waiting for the group to catch up")
    if not workloads.wait_caught_up(cluster.bootstrap, topic, PARTITIONS, GROUP, mode.catchup_s):
        emit("note", text=f"group did not commit up to the high watermarks in {mode.catchup_s} s")
    log("stopping consumers")
    for problem in procs.stop(consumers, 30):
        harness_error(problem)
    if workloads.committed_offsets(cluster.bootstrap, topic, PARTITIONS, GROUP, emit) is None:
        harness_error("could not read the group's committed offsets back")
    log("final drain")
    workloads.drain(cluster.bootstrap, topic, PARTITIONS, "drain", emit, mode.drain_s,
                    isolation="read_committed", log_path=procs.workdir / "drain.log")
    if txn:
        # Aborted records are in the log, only hidden: this one must read them too.
        log("final drain, read_uncommitted")
        workloads.drain(cluster.bootstrap, topic, PARTITIONS, "drain-uncommitted", emit,
                        mode.drain_s, isolation="read_uncommitted",
                        log_path=procs.workdir / "drain-uncommitted.log")
    if cluster.multi:
        # Before the replicas are read back (_finish): every node holds what its leaders committed.
        log("waiting for every replica to catch up")
        for node in cluster.nodes:
            cluster.wait_caught_up(node, topic=topic)
        return True
    return False


def _finish(h: History, procs: Procs, cluster: Cluster, workdir: Path,
            read_replicas: bool = False) -> tuple[History, Path]:
    """Stop the server(s) cleanly, collect everything into the history (with read_replicas: also
    every cleanly stopped node's copy of the topic)."""
    clean = set()
    for node in cluster.nodes:
        if node.running():
            rc = node.terminate()
            if rc == 0:
                clean.add(node.node_id)
            else:
                h.add("server", time.monotonic(), node=node.node_id, what="unclean-exit",
                      detail=f"final SIGTERM: exit {rc}" if rc is not None
                      else "final SIGTERM: did not exit within 30 s; killed")
        for line in node.panics()[:5]:
            h.add("server", time.monotonic(), node=node.node_id, what="panic", detail=line.strip())
    if read_replicas:
        # Every replica's copy of the topic, from its segment files (the checker compares them
        # with what the leaders served: replica-diverged).
        for node in cluster.nodes:
            if node.node_id not in clean:
                continue
            for p in range(h.meta["partitions"]):
                records, opaque = segments.read_log(node.data_dir, h.meta["topic"], p)
                h.add("replica", time.monotonic(), node=node.node_id, partition=p,
                      records=[list(r) for r in records], opaque=[list(r) for r in opaque])
    kill_children()
    for name, path in procs.events.items():
        for ev in load_events_file(path):
            if ev["type"] == "producer_info":
                h.add_producer(ev["producer"], ev["client"], idempotent=ev["idempotent"],
                               acks=ev["acks"], retries=ev["retries"],
                               max_in_flight=ev["max_in_flight"], config=ev["config"],
                               transactional=ev.get("transactional", False))
            else:
                h.extend([ev])
    h.sort()
    return h, workdir
