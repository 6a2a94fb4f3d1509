"""Helpers for consumer-group tests: member processes, group descriptions, waits.

A group member runs as its own process (group_member.py) so that a test can
close it cleanly (SIGTERM -> consumer.close()) or crash it (SIGKILL).  The
member reports everything it sees through an events file; MemberProc reads it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import confluent_kafka as ck
from confluent_kafka import ConsumerGroupState

from harness import POLL_INTERVAL_S

MEMBER = Path(__file__).resolve().parent / "group_member.py"
GROUP_DELAY_FLAG = "--group-initial-rebalance-delay-ms"


def group_args(initial_rebalance_delay_ms: int) -> list[str]:
    """Server arguments for group tests (Kafka's group.initial.rebalance.delay.ms)."""
    return [GROUP_DELAY_FLAG, str(initial_rebalance_delay_ms)]


class MemberProc:
    """One group member process; see group_member.py for the events it writes."""

    def __init__(self, client: str, bootstrap: str, topic: str, group: str, workdir: Path,
                 name: str, conf: dict | None = None):
        self.client = client
        self.name = name
        self.topic = topic
        self.group = group
        conf = dict(conf or {})
        # Members are told apart in DescribeGroups by their client id.
        if client == "ck":
            conf.setdefault("client.id", name)
            self.client_id = conf["client.id"]
        else:
            conf.setdefault("client_id", name)
            self.client_id = conf["client_id"]
        self.conf = conf
        workdir.mkdir(parents=True, exist_ok=True)
        self.events_path = workdir / f"{name}.events"
        self.stderr_path = workdir / f"{name}.stderr"
        self.events_path.unlink(missing_ok=True)
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(MEMBER), client, bootstrap, topic, group,
             str(self.events_path), json.dumps(conf)],
            stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=subprocess.STDOUT,
        )
        self.returncode: int | None = None

    # -- events ------------------------------------------------------------------
    def events(self) -> list[dict]:
        try:
            data = self.events_path.read_bytes()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        return [json.loads(line) for line in complete.decode().splitlines()]

    def assignment(self) -> list[int] | None:
        """The member's current assignment as last reported by consumer.assignment()."""
        current = None
        for e in self.events():
            if e["ev"] == "assignment":
                current = e["parts"]
        return current

    def callbacks(self, kind: str) -> list[dict]:
        return [e for e in self.events() if e["ev"] == kind]

    def records(self) -> list[tuple[int, int, str]]:
        return [tuple(r) for e in self.events() if e["ev"] == "msgs" for r in e["recs"]]

    def uncommitted(self) -> set[tuple[int, int]]:
        """(partition, offset) of records whose batch commit failed or never finished.

        Only these may legitimately be consumed again by another member.
        """
        out: set[tuple[int, int]] = set()
        pending: list = []
        for e in self.events():
            if e["ev"] == "msgs":
                out.update((p, o) for p, o, _ in pending)
                pending = e["recs"]
            elif e["ev"] == "commit":
                pending = []
            elif e["ev"] == "commit_error":
                out.update((p, o) for p, o, _ in pending)
                pending = []
        out.update((p, o) for p, o, _ in pending)
        return out

    def all_committed(self) -> bool:
        """Every batch this member consumed has been committed (or its commit failed)."""
        last = None
        for e in self.events():
            if e["ev"] in ("msgs", "commit", "commit_error"):
                last = e["ev"]
        return last != "msgs"

    def commit_errors(self) -> list[dict]:
        return self.callbacks("commit_error")

    def errors(self) -> list[dict]:
        return self.callbacks("error")

    def stderr_tail(self, n: int = 40) -> str:
        try:
            lines = self.stderr_path.read_bytes().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-n:])

    def summary(self) -> str:
        evs = [e for e in self.events() if e["ev"] != "msgs"]
        return (f"{self.name} (pid {self.proc.pid}, rc {self.proc.poll()}): "
                f"assignment={self.assignment()} records={len(self.records())} "
                f"events(no msgs)={[{k: v for k, v in e.items() if k != 't'} for e in evs][-12:]}")

    # -- process control ---------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM: the member closes its consumer and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"member {self.name} did not close within {timeout}s\n"
                                 f"{self.summary()}\n{self.stderr_tail()}")
        self.returncode = rc
        assert rc == 0, f"member {self.name} exited {rc}\n{self.stderr_tail()}"
        assert self.callbacks("closed"), f"member {self.name} exited without closing"
        return rc

    def kill9(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        self.returncode = self.proc.wait(timeout=15)
        return self.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self._stderr.close()


# ---------------------------------------------------------------------------
# Group state as the broker reports it (DescribeGroups via librdkafka's admin)
# ---------------------------------------------------------------------------


def describe_group(admin, group: str):
    """ConsumerGroupDescription of group (DescribeGroups)."""
    return admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=20)


def member_assignments(desc, topic: str) -> dict[str, list[int]]:
    """{client_id: sorted partitions of topic} from a ConsumerGroupDescription."""
    return {
        m.client_id: sorted(tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic)
        for m in desc.members
    }


def wait_group_settled(admin, group: str, topic: str, members: list[MemberProc], partitions: int,
                       timeout: float, what: str = "group to settle") -> dict[str, list[int]]:
    """Wait until the broker and every member agree on a complete, disjoint assignment.

    The condition: DescribeGroups says Stable with exactly `members` (by client
    id); each member process reports (consumer.assignment()) exactly what the
    broker says it was assigned; the assignments are pairwise disjoint and
    together cover partitions 0..partitions-1.  Returns {client_id: partitions}.
    """
    deadline = time.monotonic() + timeout
    last = "nothing observed yet"
    want_ids = sorted(m.client_id for m in members)
    while True:
        for m in members:
            assert m.alive(), f"member {m.name} died\n{m.summary()}\n{m.stderr_tail()}"
        try:
            desc = describe_group(admin, group)
        except ck.KafkaException as e:
            last = f"DescribeGroups failed: {e}"
            desc = None
        if desc is not None:
            broker = member_assignments(desc, topic)
            reported = {m.client_id: m.assignment() for m in members}
            owned = sorted(p for ps in broker.values() for p in ps)
            last = (f"state={desc.state} broker members/assignments={broker} "
                    f"member-reported assignments={reported}")
            if (desc.state == ConsumerGroupState.STABLE
                    and sorted(broker) == want_ids
                    and all(reported[c] == broker[c] for c in want_ids)
                    and owned == list(range(partitions))):
                return broker
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}: {last}\n"
                + "\n".join(m.summary() for m in members))
        time.sleep(0.1)


def wait_consumed(members: list[MemberProc], expected: set[tuple[int, int]], timeout: float,
                  what: str = "messages to be consumed") -> None:
    """Wait until the members together have consumed every (partition, offset) in expected."""
    deadline = time.monotonic() + timeout
    while True:
        seen = {(p, o) for m in members for (p, o, _) in m.records()}
        missing = expected - seen
        if not missing:
            return
        for m in members:
            if not m.alive() and m.returncode is None:
                raise AssertionError(f"member {m.name} died\n{m.summary()}\n{m.stderr_tail()}")
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}: {len(missing)} of {len(expected)} "
                f"never consumed, e.g. {sorted(missing)[:10]}\n"
                + "\n".join(m.summary() for m in members))
        time.sleep(POLL_INTERVAL_S * 2)


def duplicates(members: list[MemberProc], only: set[tuple[int, int]] | None = None) -> dict:
    """(partition, offset) -> times consumed, for those consumed more than once."""
    c = Counter((p, o) for m in members for (p, o, _) in m.records()
                if only is None or (p, o) in only)
    return {k: n for k, n in c.items() if n > 1}
