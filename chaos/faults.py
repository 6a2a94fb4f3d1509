"""Faults and the seeded fault schedule.

A fault is injected on one node and healed before the next fault starts; each records a "fault"
event spanning [injection, healed] (the checker treats that window as a time when clients may have
retried).  Server misbehaviour seen while doing so (not ready after a restart, an unclean exit on
SIGTERM) is recorded as a "server" event; the checker reports those as server-failure.

Faults today (single node):
  kill9   SIGKILL the node, stay down for a moment, restart it, wait until ready
  pause   SIGSTOP the node for a few seconds, then SIGCONT
  term    SIGTERM the node (clean shutdown expected: exit 0 within 30 s), restart it

Adding a fault = a Fault subclass registered in FAULTS, with plan_params() drawing its parameters
from the schedule's random generator (network partitions and disk faults will come this way, and
will pick their nodes from a multi-node Cluster).

The schedule is a pure function of (seed, scenario, mode): plan() draws every fault's start time,
kind, node and parameters up front, so printing the seed is enough to replay the same schedule
(the workload's timing around it is, of course, not replayed).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from chaos.cluster import Cluster, Node, NodeNotReady

Emit = Callable[..., None]   # emit(type, t=..., **fields): records a history event


class Fault:
    kind = ""

    def __init__(self, **params):
        self.params = params

    @classmethod
    def plan_params(cls, rng: random.Random, mode: str) -> dict[str, Any]:
        return {}

    def apply(self, node: Node, emit: Emit) -> None:
        """Inject on node, heal, record the fault event (and server events)."""
        t0 = time.monotonic()
        try:
            self.inject_and_heal(node, emit)
        except NodeNotReady as e:
            emit("server", node=node.node_id, what="not-ready", detail=str(e))
            raise
        finally:
            emit("fault", t=time.monotonic(), fault=self.kind, node=node.node_id, t_start=t0,
                 params=self.params)

    def inject_and_heal(self, node: Node, emit: Emit) -> None:
        raise NotImplementedError


class Kill9(Fault):
    kind = "kill9"

    @classmethod
    def plan_params(cls, rng, mode):
        return {"down_s": round(rng.uniform(0.0, 1.5 if mode == "quick" else 3.0), 2)}

    def inject_and_heal(self, node, emit):
        node.kill9()
        time.sleep(self.params.get("down_s", 0.0))
        node.start()


class Pause(Fault):
    kind = "pause"

    @classmethod
    def plan_params(cls, rng, mode):
        return {"paused_s": round(rng.uniform(1.0, 7.0 if mode == "quick" else 10.0), 2)}

    def inject_and_heal(self, node, emit):
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

    def inject_and_heal(self, node, emit):
        t0 = time.monotonic()
        rc = node.terminate()
        if rc is None:
            emit("server", node=node.node_id, what="stuck-on-sigterm",
                 detail="did not exit within 30 s of SIGTERM; killed")
        elif rc != 0:
            emit("server", node=node.node_id, what="unclean-exit",
                 detail=f"exited with {rc} on SIGTERM after {time.monotonic() - t0:.1f} s")
        time.sleep(self.params.get("down_s", 0.0))
        node.start()


FAULTS: dict[str, type[Fault]] = {f.kind: f for f in (Kill9, Pause, TermRestart)}


@dataclass
class PlannedFault:
    at_s: float                  # seconds after the load started
    kind: str
    node_index: int
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        ps = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"t+{self.at_s:.1f}s {self.kind} node#{self.node_index + 1} {ps}".strip()


def plan(seed: int, scenario: str, kinds: list[str], count: int, start_s: float, end_s: float,
         nodes: int, mode: str) -> list[PlannedFault]:
    """count faults drawn from kinds, one per equal slot of [start_s, end_s], each at a random time
    within the first half of its slot (so it can heal before the next one)."""
    if not kinds or count <= 0:
        return []
    rng = random.Random(f"{seed}/{scenario}")
    slot = (end_s - start_s) / count
    out = []
    for i in range(count):
        kind = rng.choice(kinds)
        at = start_s + i * slot + rng.uniform(0, slot / 2)
        out.append(PlannedFault(round(at, 2), kind, rng.randrange(nodes),
                                FAULTS[kind].plan_params(rng, mode)))
    return out


def run_schedule(planned: list[PlannedFault], cluster: Cluster, emit: Emit, t_load: float,
                 end_s: float, log: Callable[[str], None]) -> None:
    """Apply the planned faults at their times (a fault starts no earlier than planned, and after
    the previous one healed); until end_s, also watch for nodes that exit on their own (recorded
    as server-failure and restarted so the run can go on)."""
    queue = list(planned)
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
            log(f"fault {f.describe()}")
            FAULTS[f.kind](**f.params).apply(cluster.nodes[f.node_index], emit)
            continue
        if not queue and now >= end_s:
            return
        time.sleep(0.05)
