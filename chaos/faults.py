"""Faults and the seeded fault schedule.

A fault is injected on one node and healed before the next fault starts; each records a "fault"
event spanning [injection, healed] (the checker treats that window as a time when clients may have
retried).  Server misbehaviour seen while doing so (not ready after a restart, an unclean exit on
SIGTERM) is recorded as a "server" event; the checker reports those as server-failure.

Faults on one node (any scenario):
  kill9            SIGKILL the node, stay down for a moment, restart it, wait until ready
  pause            SIGSTOP the node for a few seconds, then SIGCONT
  term             SIGTERM the node (clean shutdown expected: exit 0 within 30 s), restart it
Disk faults (the node runs with the test-only `--test-fault-injection true`; docs/design/disk-faults.md):
  fsync-eio        every fsync fails (EIO) for a few seconds: the logs written to go offline for
                   good (probe: /health/ready 503, during and after the disk recovered); then
                   kill -9 (a SIGTERM could not flush) and restart, which re-reads the disk
  disk-full        every write fails with ENOSPC (a random torn prefix lands first) for a few
                   seconds, then space returns; no restart (probe: the node stays ready)
  slow-disk        every fsync takes 50-200 ms longer for a while (latency only)
  corrupt-segment  SIGTERM the node, then in one partition's active segment flip a byte inside a
                   record value of a batch in the middle, or truncate the file inside that batch;
                   `chronik-server check` must report it (probes: exit 0 before, exit 1 after);
                   restart.  Everything from that batch to the end of the log is destroyed by
                   design (single node: nothing to repair from): the "corruption" event records
                   the range and what it held, and the checker accounts for it (chaos/checker.py)
Disk-fault windows are recorded as "disk_fault" events (no write received while fail_syncs or
disk_full was on may be acknowledged), the server states they imply as "probe" events.
Cluster faults (three nodes; chaos/cluster.py).  Each picks its node when it starts, from the
nodes' `GET /cluster` (the plan fixes the partition and the draw, the run decides which node that
is), and after healing waits until every partition has an agreed live leader again:
  kill9-leader     SIGKILL the leader of a partition; wait until the other two agree on a new
                   leader (failover); stay down a moment longer; restart it, wait until ready
  kill9-follower   SIGKILL a follower of a partition; stay down for seconds (it misses writes);
                   restart it; wait until it has caught up (its log end offsets reach the leaders'
                   high watermarks)
  pause-leader     SIGSTOP the leader of a partition; wait until the other two agree on a new
                   leader; keep it stopped for the planned seconds (longer than an election);
                   SIGCONT (the stale leader must step down), wait until ready
  term-rolling     SIGTERM the next node in turn (node 1, 2, 3, 1, ...: a rolling restart; exit 0
                   expected), restart it, wait until it has caught up before the next one
  kill9-random     SIGKILL a node drawn by the seeded plan, stay down for seconds, restart it
  kill9-all        SIGKILL every node at once, stay down for seconds, restart them all
  slow-follower    a follower of a partition: its peer links (both ways) delayed through the
                   cluster's DelayProxies (chaos/proxy.py) and its fsyncs slowed (fault layer) for
                   seconds; then wait until it has caught up
  fsync-eio-leader every fsync of a partition's leader fails: it must exit 1 on its own (a
                   cluster node whose data directory fails shuts down); wait until the other two
                   agree on leaders; restart it; wait until it has caught up
  disk-full-follower  the same with a follower's disk full (ENOSPC after a torn prefix)
  corrupt-replica  SIGTERM a follower of a partition, damage its copy of that partition's active
                   segment as corrupt-segment does, check, restart: it must log that it lost
                   entries it had, repair them from the leader and catch up (no allowance)
Network partitions (three nodes, each in its own network namespace: chaos/netns.py; the clients
always reach every node):
  partition-leader the leader of a partition cut off from the other two for seconds; wait until
                   those two agree on leaders for every partition; heal
  partition-node   majority / minority: the plan's node cut off from the other two, as above
  partition-bridge the two nodes other than the plan's cannot reach each other for seconds; heal
  partition-flap   a seeded sequence of short cuts (a node isolated, or one link) with short gaps
A failover or catch-up that does not happen in time raises NoLeader / NotCaughtUp: a server-failure.
What the run observed (the node picked, its role, the new leader, the failover or catch-up time)
goes into the fault event's "observed" field.

Adding a fault = a Fault subclass registered in FAULTS, with plan_params() drawing its parameters
from the schedule's random generator.  A fault that needs the fault layer sets needs_fault_layer;
one that cuts links, needs_network (the scenario's nodes then run in network namespaces); one that
slows links, needs_proxies (every peer link then runs through a DelayProxy).

The schedule is a pure function of (seed, scenario, mode): plan() draws every fault's start time,
kind, node and parameters up front, so printing the seed is enough to replay the same schedule
(the workload's timing around it is, of course, not replayed).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable

from chaos import segments
from chaos.cluster import Cluster, Node, NodeNotReady, NoLeader
from chaos.netns import Network

Emit = Callable[..., None]   # emit(type, t=..., **fields): records a history event


class Fault:
    kind = ""
    needs_fault_layer = False    # the node must run with --test-fault-injection true
    needs_network = False        # the nodes must run in network namespaces (chaos/netns.py)
    needs_proxies = False        # every peer link must run through a DelayProxy (chaos/proxy.py)
    cuts_logs = False            # may cut a log below consumers' positions (by design)
    # Which node: "node" (the plan's node index), "each" (the next node in turn: rolling),
    # "leader" / "follower" (of the plan's partition, found when the fault starts).
    target = "node"
    min_nodes = 1                # a fault of a cluster scenario needs that many nodes

    def __init__(self, **params):
        self.params = params
        self.observed: dict[str, Any] = {}   # what the run saw (recorded in the fault event)

    @classmethod
    def plan_params(cls, rng: random.Random, mode: str) -> dict[str, Any]:
        return {}

    def pick(self, cluster: Cluster, node_index: int, ctx: dict[str, Any]) -> Node:
        """The node to act on.  A leader / follower target is resolved from GET /cluster: the
        leader every live node names for partition int(partition_draw * partitions); a follower
        is one of that partition's other replicas (by follower_draw)."""
        if self.target in ("node", "each"):
            return cluster.nodes[node_index % len(cluster.nodes)]
        topic, partitions = ctx["topic"], ctx["partitions"]
        p = int(self.params.get("partition_draw", 0.0) * partitions) % partitions
        leader = cluster.wait_leader(topic, p)
        self.observed.update(partition=p, leader=leader)
        if self.target == "leader":
            return cluster.node(leader)
        entries = [v[(topic, p)] for v in cluster.views().values() if (topic, p) in v]
        replicas = next((e["replicas"] for e in entries if e.get("replicas")),
                        [n.node_id for n in cluster.nodes])
        followers = sorted(r for r in replicas if r != leader)
        follower = followers[int(self.params.get("follower_draw", 0.0) * len(followers))
                             % len(followers)]
        return cluster.node(follower)

    def apply(self, node: Node, emit: Emit, ctx: dict[str, Any] | None = None) -> None:
        """Inject on node, heal, record the fault event (and server events).  ctx describes the
        workload (topic, partitions; "cluster": the Cluster of a cluster scenario) for faults
        that act on its data or wait for the cluster."""
        t0 = time.monotonic()
        ctx = ctx or {}
        try:
            self.inject_and_heal(node, emit, ctx)
            cluster = ctx.get("cluster")
            if cluster is not None and cluster.multi:
                # Healed = every partition has an agreed live leader again (part of the window).
                cluster.wait_stable()
        except NoLeader as e:
            emit("server", node=e.node_id, what="no-leader", detail=str(e))
            raise
        except NodeNotReady as e:
            emit("server", node=e.node_id or node.node_id, what="not-ready", detail=str(e))
            raise
        finally:
            emit("fault", t=time.monotonic(), fault=self.kind, node=node.node_id, t_start=t0,
                 params=self.params, observed=self.observed)

    def inject_and_heal(self, node: Node, emit: Emit, ctx: dict[str, Any]) -> None:
        raise NotImplementedError


class Kill9(Fault):
    kind = "kill9"

    @classmethod
    def plan_params(cls, rng, mode):
        return {"down_s": round(rng.uniform(0.0, 1.5 if mode == "quick" else 3.0), 2)}

    def inject_and_heal(self, node, emit, ctx):
        node.kill9()
        time.sleep(self.params.get("down_s", 0.0))
        node.start()


class Pause(Fault):
    kind = "pause"

    @classmethod
    def plan_params(cls, rng, mode):
        return {"paused_s": round(rng.uniform(1.0, 7.0 if mode == "quick" else 10.0), 2)}

    def inject_and_heal(self, node, emit, ctx):
        node.pause()
        time.sleep(self.params.get("paused_s", 1.0))
        node.resume()
        node.wait_ready()


class TermRestart(Fault):
    """Rolling restart of a single node: a clean SIGTERM shutdown under load, then a restart."""

    kind = "term"

    @classmethod
    def plan_params(cls, rng, mode):
        return {"down_s": round(rng.uniform(0.0, 1.0), 2)}

    def inject_and_heal(self, node, emit, ctx):
        stop_clean(node, emit)
        time.sleep(self.params.get("down_s", 0.0))
        node.start()


def stop_clean(node: Node, emit: Emit) -> None:
    """SIGTERM the node and wait; an exit code other than 0 is a server event."""
    t0 = time.monotonic()
    rc = node.terminate()
    if rc is None:
        emit("server", node=node.node_id, what="stuck-on-sigterm",
             detail="did not exit within 30 s of SIGTERM; killed")
    elif rc != 0:
        emit("server", node=node.node_id, what="unclean-exit",
             detail=f"exited with {rc} on SIGTERM after {time.monotonic() - t0:.1f} s")


# ---------------------------------------------------------------------------------------------
# cluster faults
# ---------------------------------------------------------------------------------------------

def _failover(node: Node, ctx: dict[str, Any], observed: dict[str, Any], t_fault: float) -> None:
    """Wait until the live nodes agree on a leader of the target partition other than `node`
    (killed or paused): raises NoLeader if that takes longer than LEADER_TIMEOUT_S."""
    cluster: Cluster = ctx["cluster"]
    new = cluster.wait_leader(ctx["topic"], observed["partition"], exclude=(node.node_id,))
    observed.update(new_leader=new, failover_s=round(time.monotonic() - t_fault, 3))


class KillLeader(Fault):
    kind = "kill9-leader"
    target = "leader"
    min_nodes = 3

    @classmethod
    def plan_params(cls, rng, mode):
        return {"partition_draw": round(rng.random(), 4),
                "down_s": round(rng.uniform(0.0, 1.0 if mode == "quick" else 3.0), 2)}

    def inject_and_heal(self, node, emit, ctx):
        node.kill9()
        _failover(node, ctx, self.observed, time.monotonic())
        time.sleep(self.params.get("down_s", 0.0))
        node.start()


class KillFollower(Fault):
    kind = "kill9-follower"
    target = "follower"
    min_nodes = 3

    @classmethod
    def plan_params(cls, rng, mode):
        return {"partition_draw": round(rng.random(), 4), "follower_draw": round(rng.random(), 4),
                "down_s": round(rng.uniform(0.5, 3.0 if mode == "quick" else 8.0), 2)}

    def inject_and_heal(self, node, emit, ctx):
        node.kill9()
        time.sleep(self.params.get("down_s", 0.0))
        node.start()
        self.observed["caught_up_s"] = round(ctx["cluster"].wait_caught_up(node), 3)


class PauseLeader(Fault):
    kind = "pause-leader"
    target = "leader"
    min_nodes = 3

    @classmethod
    def plan_params(cls, rng, mode):
        return {"partition_draw": round(rng.random(), 4),
                "paused_s": round(rng.uniform(3.0, 5.0 if mode == "quick" else 10.0), 2)}

    def inject_and_heal(self, node, emit, ctx):
        t0 = time.monotonic()
        node.pause()
        try:
            _failover(node, ctx, self.observed, t0)
            time.sleep(max(0.0, self.params.get("paused_s", 3.0) - (time.monotonic() - t0)))
        finally:
            node.resume()
        self.observed["paused_s"] = round(time.monotonic() - t0, 3)
        node.wait_ready()


class RollingTerm(Fault):
    """One step of a rolling restart: SIGTERM the next node (exit 0 expected), restart it, wait
    until it has caught up before the next step."""

    kind = "term-rolling"
    target = "each"
    min_nodes = 3

    @classmethod
    def plan_params(cls, rng, mode):
        return {"down_s": round(rng.uniform(0.0, 2.0), 2)}

    def inject_and_heal(self, node, emit, ctx):
        stop_clean(node, emit)
        time.sleep(self.params.get("down_s", 0.0))
        node.start()
        self.observed["caught_up_s"] = round(ctx["cluster"].wait_caught_up(node), 3)


class KillRandom(Fault):
    kind = "kill9-random"
    min_nodes = 3

    @classmethod
    def plan_params(cls, rng, mode):
        return {"down_s": round(rng.uniform(0.0, 3.0 if mode == "quick" else 6.0), 2)}

    def inject_and_heal(self, node, emit, ctx):
        node.kill9()
        time.sleep(self.params.get("down_s", 0.0))
        node.start()


class KillAll(Fault):
    """A crash of every node at once (a power cut of the rack, as far as processes go): SIGKILL
    each node in turn without waiting between them, stay down, restart them all; acknowledged
    acks=all writes were fsynced on a majority and must all come back."""

    kind = "kill9-all"
    min_nodes = 3

    @classmethod
    def plan_params(cls, rng, mode):
        return {"down_s": round(rng.uniform(0.0, 2.0 if mode == "quick" else 5.0), 2)}

    def inject_and_heal(self, node, emit, ctx):
        cluster: Cluster = ctx["cluster"]
        for n in cluster.nodes:   # every signal first, then wait for each
            if n.proc is not None:
                n.proc.kill()
        for n in cluster.nodes:
            n.kill9()
        time.sleep(self.params.get("down_s", 0.0))
        t0 = time.monotonic()
        for n in cluster.nodes:
            n.start(wait=False)
        for n in cluster.nodes:
            n.wait_ready()
        self.observed["ready_s"] = round(time.monotonic() - t0, 3)


class SlowFollower(Fault):
    """A slow follower: a follower of a partition gets slower fsyncs (the fault layer) and its
    peer links, both ways, a delay (each link runs through a DelayProxy); the leader must go on
    committing with the other replica, and the follower must catch up once it is fast again."""

    kind = "slow-follower"
    target = "follower"
    min_nodes = 3
    needs_fault_layer = True
    needs_proxies = True

    @classmethod
    def plan_params(cls, rng, mode):
        return {"partition_draw": round(rng.random(), 4), "follower_draw": round(rng.random(), 4),
                "slow_s": round(rng.uniform(3.0, 6.0) if mode == "quick" else rng.uniform(5.0, 15.0),
                                2),
                "link_delay_ms": rng.randint(50, 300), "sync_delay_ms": rng.randint(50, 200)}

    def inject_and_heal(self, node, emit, ctx):
        cluster: Cluster = ctx["cluster"]
        slow_s = self.params.get("slow_s", 3.0)
        key = (ctx["topic"], self.observed["partition"])

        def hold():
            time.sleep(slow_s / 2)
            # How far behind the slow follower is mid-way (informational: it shows the fault bit).
            views = cluster.views()
            leader = views.get(self.observed["leader"], {}).get(key, {})
            mine = views.get(node.node_id, {}).get(key, {})
            if "high_watermark" in leader and "log_end_offset" in mine:
                self.observed["lag_mid_way"] = leader["high_watermark"] - mine["log_end_offset"]
            time.sleep(slow_s / 2)

        cluster.slow_links(node.node_id, self.params.get("link_delay_ms", 100))
        try:
            _disk_fault_window(node, emit, {"sync_delay_ms": self.params.get("sync_delay_ms", 100)},
                               hold, expect_resume=True)
        finally:
            cluster.slow_links(node.node_id, 0)
        self.observed["caught_up_s"] = round(cluster.wait_caught_up(node), 3)


# ---------------------------------------------------------------------------------------------
# network partitions (each node in its own network namespace: chaos/netns.py)
# ---------------------------------------------------------------------------------------------

def _network(ctx: dict[str, Any]) -> Network:
    net = ctx["cluster"].network
    if net is None:
        raise RuntimeError("a network fault needs a cluster in network namespaces")
    return net


def _majority_leaders(cluster: Cluster, ctx: dict[str, Any], cut_off: int,
                      observed: dict[str, Any], t0: float) -> None:
    """Wait until the nodes other than cut_off agree on a leader of every partition, none of them
    cut_off (the majority side elected leaders for what cut_off led); record how long it took."""
    others = tuple(n.node_id for n in cluster.nodes if n.node_id != cut_off)
    leaders = {p: cluster.wait_leader(ctx["topic"], p, exclude=(cut_off,), among=others)
               for p in range(ctx["partitions"])}
    observed.update(majority_leaders=leaders, majority_ready_s=round(time.monotonic() - t0, 3))


def _view_of(cluster: Cluster, node: Node, ctx: dict[str, Any]) -> dict[int, Any]:
    """The leaders node names now (what a minority node believes: informational)."""
    st = node.cluster_status() or {}
    return {p["partition"]: p.get("leader") for p in st.get("partitions", [])
            if p.get("topic") == ctx["topic"]}


class _Partition(Fault):
    needs_network = True
    min_nodes = 3

    @classmethod
    def plan_params(cls, rng, mode):
        return {"cut_s": round(rng.uniform(3.0, 6.0) if mode == "quick" else rng.uniform(5.0, 15.0),
                               2)}

    def hold(self, t0: float) -> None:
        time.sleep(max(0.0, self.params.get("cut_s", 3.0) - (time.monotonic() - t0)))


class PartitionNode(_Partition):
    """Majority / minority: one node (the plan's) cut off from the other two (clients still reach
    it); the other two must agree on leaders for every partition, while it may still believe it
    leads; it must not acknowledge a write or serve a record the majority does not have."""

    kind = "partition-node"

    def inject_and_heal(self, node, emit, ctx):
        net, cluster = _network(ctx), ctx["cluster"]
        t0 = time.monotonic()
        net.isolate(node.node_id)
        try:
            _majority_leaders(cluster, ctx, node.node_id, self.observed, t0)
            self.hold(t0)
            self.observed["minority_view"] = _view_of(cluster, node, ctx)
        finally:
            net.heal()
        self.observed["cut_s"] = round(time.monotonic() - t0, 3)


class PartitionLeader(PartitionNode):
    """The same with the leader of a partition cut off."""

    kind = "partition-leader"
    target = "leader"

    @classmethod
    def plan_params(cls, rng, mode):
        return dict(super().plan_params(rng, mode), partition_draw=round(rng.random(), 4))


class PartitionBridge(_Partition):
    """A non-transitive partition: the two nodes other than the plan's node cannot reach each
    other; the plan's node (the bridge) reaches both."""

    kind = "partition-bridge"

    def inject_and_heal(self, node, emit, ctx):
        net, cluster = _network(ctx), ctx["cluster"]
        a, b = (n.node_id for n in cluster.nodes if n is not node)
        t0 = time.monotonic()
        net.cut(a, b)
        try:
            self.hold(t0)
            self.observed["views_at_end"] = {n.node_id: _view_of(cluster, n, ctx)
                                             for n in cluster.nodes}
        finally:
            net.heal()
        self.observed.update(cut=f"{a}x{b}", cut_s=round(time.monotonic() - t0, 3))


class PartitionFlap(Fault):
    """Flapping links: a seeded sequence of short partitions (a node isolated, or one link cut)
    with short healed gaps between them."""

    kind = "partition-flap"
    needs_network = True
    min_nodes = 3

    @classmethod
    def plan_params(cls, rng, mode):
        total = rng.uniform(4.0, 7.0) if mode == "quick" else rng.uniform(10.0, 20.0)
        steps, t = [], 0.0
        while t < total:
            cut = ([rng.randrange(3) + 1] if rng.random() < 0.5
                   else sorted(rng.sample([1, 2, 3], 2)))
            on, off = round(rng.uniform(0.2, 1.5), 2), round(rng.uniform(0.1, 1.0), 2)
            steps.append([cut, on, off])
            t += on + off
        return {"steps": steps}

    def inject_and_heal(self, node, emit, ctx):
        net = _network(ctx)
        t0 = time.monotonic()
        try:
            for cut, on, off in self.params.get("steps", []):
                if len(cut) == 1:
                    net.isolate(cut[0])
                else:
                    net.cut(cut[0], cut[1])
                time.sleep(on)
                net.heal()
                time.sleep(off)
        finally:
            net.heal()
        self.observed.update(flaps=len(self.params.get("steps", [])),
                             flapping_s=round(time.monotonic() - t0, 3))


# ---------------------------------------------------------------------------------------------
# disk faults
# ---------------------------------------------------------------------------------------------

def _probe(emit: Emit, node: Node, what: str, expected: str, observed: str, detail: str = "") -> None:
    emit("probe", node=node.node_id, what=what, expected=expected, observed=observed, detail=detail)


def _readiness(status: int | None) -> str:
    return {200: "ready", 503: "unready"}.get(status, f"status {status}")


def _wait_status(node: Node, want: int, timeout: float) -> tuple[int | None, float]:
    """Poll /health/ready until it answers `want` or timeout; (last status, seconds waited)."""
    t0 = time.monotonic()
    while True:
        status = node.ready_status()
        waited = time.monotonic() - t0
        if status == want or waited >= timeout:
            return status, waited
        time.sleep(0.05)


def _disk_fault_window(node: Node, emit: Emit, plan: dict[str, int], hold: Callable[[], None],
                       expect_resume: bool, replicated: bool = False) -> None:
    """Set plan, run hold() while it is active, clear it; record the window as a disk_fault event
    (t_start: the server had the plan, t: just before it was cleared).  replicated: the node is
    one replica of three, so the others may acknowledge writes meanwhile."""
    node.set_faults(**plan)
    t_on = time.monotonic()
    try:
        hold()
    finally:
        t_off = time.monotonic()
        emit("disk_fault", t=t_off, node=node.node_id, t_start=t_on, plan=plan,
             expect_resume=expect_resume, replicated=replicated)
        node.set_faults()


class FsyncEio(Fault):
    """Every fsync fails: the logs written to go offline until the process restarts."""

    kind = "fsync-eio"
    needs_fault_layer = True

    @classmethod
    def plan_params(cls, rng, mode):
        return {"eio_s": round(rng.uniform(1.5, 4.0 if mode == "quick" else 8.0), 2),
                "down_s": round(rng.uniform(0.0, 1.0), 2)}

    def inject_and_heal(self, node, emit, ctx):
        eio_s = self.params.get("eio_s", 2.0)

        def hold():
            t0 = time.monotonic()
            status, waited = _wait_status(node, 503, max(eio_s, 5.0))
            _probe(emit, node, "ready while fsyncs fail (a log went offline)", "unready",
                   _readiness(status), f"after {waited:.2f} s of failing fsyncs")
            time.sleep(max(0.0, eio_s - (time.monotonic() - t0)))

        _disk_fault_window(node, emit, {"fail_syncs": 1}, hold, expect_resume=False)
        # A failed fsync is never retried: the log stays offline although the disk is fine again.
        time.sleep(0.3)
        _probe(emit, node, "ready after the disk recovered, before a restart", "unready",
               _readiness(node.ready_status()), "a failed fsync is never retried")
        # SIGTERM could not flush the offline logs: kill -9, restart (with an empty fault plan).
        node.kill9()
        time.sleep(self.params.get("down_s", 0.0))
        node.start()


class _ReplicaDiskFailure(Fault):
    """Cluster: the disk of one node fails (the fault plan of a subclass).  A cluster node whose
    data directory fails shuts down with exit status 1 (as a Kafka broker whose log dirs all
    failed; README, Operations); the other two elect leaders for what it led and go on; it is
    restarted (with a working disk: an empty fault plan) and must catch up from them."""

    min_nodes = 3
    needs_fault_layer = True
    what = ""                      # the failure, for the probe

    EXIT_TIMEOUT_S = 15.0

    @classmethod
    def plan_params(cls, rng, mode):
        return {"partition_draw": round(rng.random(), 4), "follower_draw": round(rng.random(), 4),
                "down_s": round(rng.uniform(1.0, 3.0 if mode == "quick" else 8.0), 2)}

    def fault_plan(self) -> dict[str, int]:
        raise NotImplementedError

    def inject_and_heal(self, node, emit, ctx):
        cluster: Cluster = ctx["cluster"]
        plan = self.fault_plan()
        node.set_faults(**plan)
        t_on = time.monotonic()
        try:
            assert node.proc is not None
            rc: int | None = node.proc.wait(timeout=self.EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rc = None
        emit("disk_fault", node=node.node_id, t_start=t_on, plan=plan, expect_resume=False,
             replicated=True)
        _probe(emit, node, f"exit once {self.what} (the data directory failed)", "exit 1",
               "still running" if rc is None else f"exit {rc}",
               f"within {self.EXIT_TIMEOUT_S:.0f} s")
        self.observed["exited_after_s"] = round(time.monotonic() - t_on, 3)
        node.kill9()   # reaps it (or stops it, if it did not exit)
        _majority_leaders(cluster, ctx, node.node_id, self.observed, t_on)
        time.sleep(self.params.get("down_s", 1.0))
        node.start()
        self.observed["caught_up_s"] = round(cluster.wait_caught_up(node), 3)


class LeaderFsyncEio(_ReplicaDiskFailure):
    """Every fsync of the leader of a partition fails."""

    kind = "fsync-eio-leader"
    target = "leader"
    what = "its fsyncs fail"

    def fault_plan(self):
        return {"fail_syncs": 1}


class FollowerDiskFull(_ReplicaDiskFailure):
    """The disk of a follower of a partition is full: every write fails with ENOSPC, after a
    torn prefix of torn_write_bytes landed."""

    kind = "disk-full-follower"
    target = "follower"
    what = "its disk is full"

    @classmethod
    def plan_params(cls, rng, mode):
        return dict(super().plan_params(rng, mode),
                    torn_write_bytes=rng.choice([0, rng.randint(1, 61), rng.randint(62, 5000)]))

    def fault_plan(self):
        return {"disk_full": 1, "torn_write_bytes": self.params.get("torn_write_bytes", 0)}


class DiskFull(Fault):
    """Every write fails with ENOSPC, after a torn prefix of torn_write_bytes landed."""

    kind = "disk-full"
    needs_fault_layer = True

    @classmethod
    def plan_params(cls, rng, mode):
        torn = rng.choice([0, rng.randint(1, 61), rng.randint(62, 5000)])
        return {"full_s": round(rng.uniform(1.0, 4.0 if mode == "quick" else 8.0), 2),
                "torn_write_bytes": torn}

    def inject_and_heal(self, node, emit, ctx):
        full_s = self.params.get("full_s", 2.0)

        def hold():
            time.sleep(full_s / 2)
            _probe(emit, node, "ready while the disk is full (the log stays online)", "ready",
                   _readiness(node.ready_status()), f"{full_s / 2:.2f} s into the fault")
            time.sleep(full_s / 2)

        _disk_fault_window(node, emit, {"disk_full": 1,
                                        "torn_write_bytes": self.params.get("torn_write_bytes", 0)},
                           hold, expect_resume=True)
        status, waited = _wait_status(node, 200, 5.0)
        _probe(emit, node, "ready once the disk has space again", "ready", _readiness(status),
               f"within {waited:.2f} s")


class SlowDisk(Fault):
    """Every fsync takes sync_delay_ms longer."""

    kind = "slow-disk"
    needs_fault_layer = True

    @classmethod
    def plan_params(cls, rng, mode):
        return {"slow_s": round(rng.uniform(2.0, 5.0 if mode == "quick" else 15.0), 2),
                "sync_delay_ms": rng.randint(50, 200)}

    def inject_and_heal(self, node, emit, ctx):
        slow_s = self.params.get("slow_s", 3.0)

        def hold():
            time.sleep(slow_s / 2)
            _probe(emit, node, "ready while fsyncs are slow", "ready",
                   _readiness(node.ready_status()), f"{slow_s / 2:.2f} s into the fault")
            time.sleep(slow_s / 2)

        _disk_fault_window(node, emit, {"sync_delay_ms": self.params.get("sync_delay_ms", 100)},
                           hold, expect_resume=True)


def _damage_segment(node: Node, topic: str, partitions: int, params: dict[str, Any],
                    rng: random.Random, min_batches: int) -> tuple[dict[str, Any], Path]:
    """On a stopped node: flip a byte of a record value inside a batch in the middle of one
    partition's active segment, or truncate the file inside that batch (params: how,
    partition_draw, where).  Returns what was destroyed (the corruption event's fields) and the
    segment's path."""
    first_choice = int(params.get("partition_draw", 0.0) * partitions) % partitions
    for p in [(first_choice + i) % partitions for i in range(partitions)]:
        seg = segments.active_segment(node.data_dir, topic, p)
        if seg is None:
            continue
        data = seg.read_bytes()
        batches = segments.parse_segment(data)
        if len(batches) >= min_batches and not any(b.compressed for b in batches):
            break
    else:
        raise RuntimeError(f"corrupt-segment: no partition of {topic} has "
                           f"{min_batches} uncompressed batches in its active segment")

    # A batch in the middle: never the first (something before it survives) nor the last.
    i = min(max(1, int(params.get("where", 0.5) * len(batches))), len(batches) - 2)
    victim = batches[i]
    destroyed = batches[i:]
    records = [[r.offset, None if r.value is None else r.value.decode("utf-8", "replace")]
               for b in destroyed for r in b.records]
    how = params.get("how", "flip")
    event = dict(node=node.node_id, topic=topic, partition=p, how=how, file=str(seg),
                 batch=[victim.base_offset, victim.last_offset],
                 first_offset=victim.base_offset, end_offset=destroyed[-1].last_offset + 1,
                 records=records, corrupted_value=None)
    if how == "flip":
        candidates = [r for r in victim.records if r.value]
        if not candidates:
            raise RuntimeError(f"corrupt-segment: batch at {seg}:{victim.pos} has no value")
        rec = rng.choice(candidates)
        # An ASCII byte of the value, XOR 0x20: still valid UTF-8, a value nobody sent.
        k = rng.randrange(min(len(rec.value), 8))
        at = rec.value_pos + k
        corrupted = bytearray(rec.value)
        corrupted[k] ^= 0x20
        with open(seg, "r+b") as f:
            f.seek(at)
            f.write(bytes([data[at] ^ 0x20]))
            f.flush()
            os.fsync(f.fileno())
        event.update(position=at, offset=rec.offset,
                     corrupted_value=bytes(corrupted).decode("utf-8", "replace"))
    else:
        at = victim.pos + 1 + rng.randrange(victim.size - 1)   # inside the batch
        os.truncate(seg, at)
        event.update(position=at, offset=victim.base_offset)
    return event, seg


class CorruptSegment(Fault):
    """Stop the node, damage one partition's active segment in the middle, check, restart."""

    kind = "corrupt-segment"
    cuts_logs = True
    MIN_BATCHES = 3

    @classmethod
    def plan_params(cls, rng, mode):
        return {"how": rng.choice(["flip", "truncate"]),
                "partition_draw": round(rng.random(), 4),
                "where": round(rng.uniform(0.25, 0.75), 4),
                "down_s": round(rng.uniform(0.0, 0.5), 2)}

    def inject_and_heal(self, node, emit, ctx):
        topic, partitions = ctx["topic"], ctx["partitions"]
        rng = random.Random(repr(sorted(self.params.items())))
        stop_clean(node, emit)
        check = node.check_data_dir()
        _probe(emit, node, "check of the data dir before the corruption", "exit 0",
               f"exit {check.returncode}", _first_lines(check.stdout + check.stderr))

        event, seg = _damage_segment(node, topic, partitions, self.params, rng,
                                     self.MIN_BATCHES)
        emit("corruption", **event)

        check = node.check_data_dir()
        out = check.stdout + check.stderr
        _probe(emit, node, "check of the data dir after the corruption",
               "exit 1, names the segment",
               f"exit {check.returncode}, {'names' if str(seg) in out else 'does not name'} "
               f"the segment", _first_lines(out))
        time.sleep(self.params.get("down_s", 0.0))
        node.start()
        cut = [line for line in node.log_since_last_start().splitlines() if str(seg) in line]
        _probe(emit, node, "start-up after the corruption logs the cut with the segment's path",
               "logged", "logged" if cut else "not logged", _first_lines("\n".join(cut), 2))


class CorruptReplica(Fault):
    """Cluster: stop a follower of a partition cleanly, damage that partition's active segment
    on it in the middle (as corrupt-segment), check, restart.  Unlike on a single node nothing may
    be lost: the node must repair its log from the other replicas (replica-diverged compares the
    copies at the end) and must never serve the damaged bytes (a flipped value is a phantom)."""

    kind = "corrupt-replica"
    target = "follower"
    min_nodes = 3
    MIN_BATCHES = 3

    @classmethod
    def plan_params(cls, rng, mode):
        return {"how": rng.choice(["flip", "truncate"]),
                "partition_draw": round(rng.random(), 4), "follower_draw": round(rng.random(), 4),
                "where": round(rng.uniform(0.25, 0.75), 4),
                "down_s": round(rng.uniform(0.0, 0.5), 2)}

    def inject_and_heal(self, node, emit, ctx):
        cluster: Cluster = ctx["cluster"]
        rng = random.Random(repr(sorted(self.params.items())))
        stop_clean(node, emit)
        # The partition drawn is this follower's: damage that one first.
        params = dict(self.params, partition_draw=(self.observed["partition"] + 0.5)
                      / ctx["partitions"])
        event, seg = _damage_segment(node, ctx["topic"], ctx["partitions"], params, rng,
                                     self.MIN_BATCHES)
        emit("replica_corruption", **event)
        check = node.check_data_dir()
        out = check.stdout + check.stderr
        _probe(emit, node, "check of the replica's data dir after the corruption",
               "exit 1, names the segment",
               f"exit {check.returncode}, {'names' if str(seg) in out else 'does not name'} "
               f"the segment", _first_lines(out))
        time.sleep(self.params.get("down_s", 0.0))
        node.start()
        self.observed["caught_up_s"] = round(cluster.wait_caught_up(node), 3)
        # Caught up, so the partition's group has been opened (after /health/ready is 200).
        guard = [line for line in node.log_since_last_start().splitlines()
                 if "lost Raft entries it had" in line and f"{ctx['topic']}-" in line]
        _probe(emit, node, "start-up after the corruption logs that the replica lost entries it "
               "had (and guards its vote until repaired)", "logged",
               "logged" if guard else "not logged", _first_lines("\n".join(guard), 1))
        self.observed["destroyed"] = [event["partition"], event["first_offset"],
                                      event["end_offset"]]


def _first_lines(text: str, n: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[:n])


FAULTS: dict[str, type[Fault]] = {f.kind: f for f in (Kill9, Pause, TermRestart, FsyncEio, DiskFull,
                                                      SlowDisk, CorruptSegment, KillLeader,
                                                      KillFollower, PauseLeader, RollingTerm,
                                                      KillRandom, KillAll, SlowFollower,
                                                      LeaderFsyncEio, FollowerDiskFull,
                                                      CorruptReplica,
                                                      PartitionLeader, PartitionNode,
                                                      PartitionBridge, PartitionFlap)}


@dataclass
class PlannedFault:
    at_s: float                  # seconds after the load started
    kind: str
    node_index: int
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        ps = " ".join(f"{k}={v}" for k, v in self.params.items())
        target = FAULTS[self.kind].target
        where = f"node#{self.node_index + 1}" if target in ("node", "each") else f"({target})"
        return f"t+{self.at_s:.1f}s {self.kind} {where} {ps}".strip()


def plan(seed: int, scenario: str, kinds: list[str], count: int, start_s: float, end_s: float,
         nodes: int, mode: str) -> list[PlannedFault]:
    """count faults drawn from kinds, one per equal slot of [start_s, end_s], each at a random time
    within the first half of its slot (so it can heal before the next one)."""
    if not kinds or count <= 0:
        return []
    rng = random.Random(f"{seed}/{scenario}")
    slot = (end_s - start_s) / count
    out = []
    rolled = 0   # "each" faults so far: a rolling restart takes the nodes in turn
    for i in range(count):
        kind = rng.choice(kinds)
        at = start_s + i * slot + rng.uniform(0, slot / 2)
        node = rng.randrange(nodes)
        if FAULTS[kind].target == "each":
            node, rolled = rolled % nodes, rolled + 1
        out.append(PlannedFault(round(at, 2), kind, node, FAULTS[kind].plan_params(rng, mode)))
    return out


def run_schedule(planned: list[PlannedFault], cluster: Cluster, emit: Emit, t_load: float,
                 end_s: float, log: Callable[[str], None],
                 ctx: dict[str, Any] | None = None) -> None:
    """Apply the planned faults at their times (a fault starts no earlier than planned, and after
    the previous one healed: in a cluster, once every partition has an agreed live leader again);
    until end_s, also watch for nodes that exit on their own (recorded as server-failure and
    restarted so the run can go on)."""
    queue = list(planned)
    ctx = dict(ctx or {}, cluster=cluster)
    while True:
        now = time.monotonic() - t_load
        for node in cluster.nodes:
            rc = node.exited_on_its_own()
            if rc is not None:
                emit("server", node=node.node_id, what="exited",
                     detail=f"exited on its own with {rc}")
                log(f"node {node.node_id} exited on its own ({rc}); restarting")
                node.start()
        if queue and now >= queue[0].at_s:
            f = queue.pop(0)
            fault = FAULTS[f.kind](**f.params)
            try:
                node = fault.pick(cluster, f.node_index, ctx)
            except NoLeader as e:
                emit("server", node=None, what="no-leader", detail=str(e))
                raise
            log(f"fault {f.describe()}" + (f" -> node {node.node_id}" if cluster.multi else ""))
            fault.apply(node, emit, ctx)
            if fault.observed:
                log(f"  observed: {fault.observed}")
            continue
        if not queue and now >= end_s:
            return
        time.sleep(0.05)
