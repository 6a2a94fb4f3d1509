"""The history of one chaos run: every send, its outcome, every poll, rebalance and commit, every fault.

A history is a list of JSON-serialisable events plus a description of each producer and consumer.
Workload processes append events to their own JSON-lines files (see chaos/workloads.py); the run
merges them into one History, which the checker (chaos/checker.py) reads and which is saved as JSON
for every failed scenario.

Times: every event has "t", seconds on CLOCK_MONOTONIC (Python's time.monotonic()), which is one
clock for all processes of the machine, so events of different processes can be ordered by it.
Events that span an interval (a commit, an offset fetch, a fault) also carry their start
("t_invoke" / "t_start"); "t" is always the moment the event was known to be complete.

Event types ("type" field) and their fields:

  send       producer, idx, value, partition, [txn]
                                                  the client's send was invoked (idx = send order);
                                                  txn: the sequence number of the transaction of
                                                  a transactional producer it was sent in
  ack        producer, idx, partition, offset     delivery report: written at (partition, offset)
                                                  (for a transactional send: written in its
                                                  transaction, not yet visible; see txn)
  fail       producer, idx, error                 delivery report: error (or the send call raised)
  unknown    producer, idx, reason                no outcome before the producer was closed
  txn        producer, txn, t_start, idxs, decision, commit_requested, outcome, [error]
                                                  one transaction of a transactional producer,
                                                  begun at t_start, its end known at t: idxs its
                                                  sends; decision "commit" | "abort" (the seeded
                                                  draw); commit_requested: commit_transaction was
                                                  called; outcome "committed" (commit_transaction
                                                  returned), "aborted" (abort_transaction
                                                  returned) or "unknown" (neither: errors, time-
                                                  outs, the producer re-created); error: what
                                                  went wrong on the way, if anything
  retry      producer, t_start, [count, error]    the client reported retries within [t_start, t]
                                                  (statistics: count; a failed produce request in
                                                  its debug log: error, t_start = t)
  client_error  client, error, [fatal]            an error a client reported outside a delivery
                                                  report (transport errors, consumer errors);
                                                  fatal: the producer instance was replaced
  assign / revoke / lost
             consumer, group, member, generation, partitions, assignment, [positions]
                                                  a rebalance callback (or a manual assign()):
                                                  the partitions it was called with, the full
                                                  assignment after it, the member id and group
                                                  generation as the client knew them (None or -1
                                                  when unknown); positions = [[p, start_offset]]
                                                  when the consumer starts at known offsets
  poll       consumer, records [[p, o, value]...] records one poll returned, in order
  seek       consumer, partition, offset, [reason, position, error]
                                                  the consumer moved its position on purpose;
                                                  offset >= 0: its next record there; reason
                                                  "offset-out-of-range" / "no-committed-offset":
                                                  an explicit reset (instead of librdkafka's
                                                  silent auto.offset.reset) from position
  commit     consumer, group, member, generation, offsets [[p, next_offset]...], t_invoke, ok, error
                                                  a synchronous offset commit and its result
  committed  group, offsets [[p, offset]...], t_invoke
                                                  committed offsets read back (OffsetFetch);
                                                  offset -1 = no committed offset
  fault      fault, node, t_start, params, [observed]
                                                  a fault injected at t_start and healed at t;
                                                  observed: what the run saw (cluster faults: the
                                                  partition and leader picked, the new leader,
                                                  failover / catch-up seconds)
  server     node, what, detail                   the server misbehaved in a way the harness saw
                                                  (did not become ready, unclean exit, panic; in
                                                  a cluster also no agreed leader, a node not
                                                  catching up: node may then be None)
  probe      node, what, expected, observed, detail
                                                  the harness checked a server state a fault
                                                  implies (e.g. /health/ready 503 while a log is
                                                  offline, `chronik-server check` exit status)
  disk_fault node, plan {fail_syncs, disk_full, torn_write_bytes, sync_delay_ms}, t_start,
             expect_resume, replicated            the server's fault layer had this plan from
                                                  t_start (the PUT had returned) to t (just before
                                                  it was cleared or the node killed, or after it
                                                  exited); replicated: a node of a cluster (the
                                                  other replicas may acknowledge meanwhile)
  corruption node, topic, partition, how ("flip" | "truncate"), file, position, offset, batch
             [first, last], first_offset, end_offset, records [[offset, value]...], corrupted_value
                                                  bytes of a stopped node's segment were changed
                                                  at t: a byte of the value of the record at
                                                  `offset` flipped (corrupted_value: that value as
                                                  the bytes now spell it), or the file truncated
                                                  inside the batch `batch`.  Offsets [first_offset,
                                                  end_offset) (that batch to the end of the log)
                                                  are destroyed by design; records: what they held
                                                  before (value None if unreadable)
  replica_corruption  the same fields                 the same damage to one replica of a cluster: no
                                                  allowance (the node must repair its copy from
                                                  the others); informational for the checker
  drain      consumer, high_watermarks [[p, hw]...], positions [[p, next]...], complete, error,
             [isolation]                          the final drain finished (its records are the
                                                  consumer's poll events); high_watermarks: the
                                                  ends it read to (for read_committed the last
                                                  stable offsets); positions: past the last
                                                  record read or the end of the log it reached
  replica    node, partition, records [[offset, value]...], opaque [[first, last]...]
                                                  cluster scenarios: one node's copy of a topic
                                                  partition, read from its segment files after
                                                  it caught up and stopped; opaque: offset ranges
                                                  of batches that could not be decoded
  note       text                                 free text (scenario phases), ignored by checks

Everything else the checks need (which sends succeeded, what was read where) is derived here, in
HistoryIndex, so that each check stays short.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

FORMAT = "chronik-chaos-history/1"

OUTCOME_EVENTS = ("ack", "fail", "unknown")
ASSIGNMENT_EVENTS = ("assign", "revoke", "lost")


@dataclass
class ProducerInfo:
    """How a producer was configured; the checker's allowances depend on it."""

    client: str                 # "confluent-kafka" | "kafka-python"
    idempotent: bool
    acks: str                   # "all" | "1" | "0"
    retries: bool               # may the client resend a message on its own?
    max_in_flight: int = 1      # requests in flight per connection (reordering needs > 1)
    config: dict[str, Any] = field(default_factory=dict)
    transactional: bool = False  # sends in transactions: a delivery report is no visible ack


@dataclass
class ConsumerInfo:
    client: str                 # "confluent-kafka" | "kafka-python"
    kind: str                   # "group" (subscribe) | "manual" (assign) | "drain" (final read)
    group: str | None = None
    isolation: str = "read_committed"   # | "read_uncommitted" (librdkafka's default: committed)

    @property
    def read_committed(self) -> bool:
        return self.isolation != "read_uncommitted"


@dataclass
class Send:
    """One send and its outcome, derived from send/ack/fail/unknown events."""

    producer: str
    idx: int
    value: str
    partition: int | None       # the partition asked for (None = client's partitioner)
    t_invoke: float
    outcome: str | None = None  # "acked" | "failed" | "unknown" | None (no outcome recorded)
    t_outcome: float | None = None
    ack_partition: int | None = None
    ack_offset: int | None = None
    error: str | None = None
    txn: int | None = None      # transactional send: its transaction's sequence number

    @property
    def acked(self) -> bool:
        """The delivery report was a success.  For a transactional send that means written in its
        transaction, not visible: see HistoryIndex.txn_of / must_be_visible."""
        return self.outcome == "acked"


@dataclass
class Txn:
    """One transaction of a transactional producer, from its sends and its txn event."""

    producer: str
    txn: int
    idxs: list[int] = field(default_factory=list)   # its sends, in send order
    t_start: float | None = None
    t_end: float | None = None
    decision: str | None = None         # "commit" | "abort"
    commit_requested: bool | None = None  # None: no txn event (the producer died in it)
    outcome: str | None = None          # "committed" | "aborted" | "unknown" | None (no event)
    error: str | None = None

    @property
    def may_commit(self) -> bool:
        """Could this transaction have been committed?  Not if it was aborted, nor if the
        producer never asked to commit it (only EndTxn(commit) commits; fencing aborts)."""
        if self.outcome == "committed":
            return True
        if self.outcome == "aborted":
            return False
        return self.commit_requested is not False


@dataclass(frozen=True)
class Read:
    consumer: str
    partition: int
    offset: int
    value: str
    t: float


class History:
    """Events plus producer/consumer descriptions.  Also a builder for hand-made histories:
    every add method takes an optional t; without it, t is one more than the latest t so far."""

    def __init__(self, meta: dict[str, Any] | None = None):
        self.meta: dict[str, Any] = dict(meta or {})
        self.producers: dict[str, ProducerInfo] = {}
        self.consumers: dict[str, ConsumerInfo] = {}
        self.events: list[dict[str, Any]] = []
        self._clock = 0.0
        self._index: HistoryIndex | None = None

    # -- building -----------------------------------------------------------------------
    def _t(self, t: float | None) -> float:
        if t is None:
            self._clock += 1.0
            return self._clock
        self._clock = max(self._clock, t)
        return t

    def add(self, type: str, t: float | None = None, **fields) -> dict[str, Any]:
        ev = {"type": type, "t": self._t(t)}
        ev.update(fields)
        self.events.append(ev)
        self._index = None
        return ev

    def extend(self, events: Iterable[dict[str, Any]]) -> None:
        for ev in events:
            self.events.append(ev)
            self._clock = max(self._clock, ev.get("t", 0.0))
        self._index = None

    def sort(self) -> None:
        """Order events by time (stable: events of one source keep their order on ties)."""
        self.events.sort(key=lambda e: e["t"])
        self._index = None

    def add_producer(self, name: str, client: str = "confluent-kafka", *, idempotent: bool,
                     acks: str = "all", retries: bool = True, max_in_flight: int = 5,
                     config: dict[str, Any] | None = None, transactional: bool = False) -> None:
        self.producers[name] = ProducerInfo(client, idempotent, str(acks), retries, max_in_flight,
                                            dict(config or {}), transactional)
        self._index = None

    def add_consumer(self, name: str, client: str = "confluent-kafka", *, kind: str = "group",
                     group: str | None = None, isolation: str = "read_committed") -> None:
        self.consumers[name] = ConsumerInfo(client, kind, group, isolation)
        self._index = None

    def send(self, producer: str, idx: int, value: str, partition: int | None = None,
             t: float | None = None, txn: int | None = None) -> dict:
        fields = {} if txn is None else {"txn": txn}
        return self.add("send", t, producer=producer, idx=idx, value=value, partition=partition,
                        **fields)

    def txn(self, producer: str, txn: int, idxs: list[int], *, decision: str = "commit",
            outcome: str, commit_requested: bool | None = None, error: str | None = None,
            t_start: float | None = None, t: float | None = None) -> dict:
        """A transaction's end (commit_requested defaults to decision == "commit")."""
        t_start = self._t(t_start)
        return self.add("txn", t, producer=producer, txn=txn, t_start=t_start, idxs=list(idxs),
                        decision=decision, outcome=outcome, error=error,
                        commit_requested=(decision == "commit") if commit_requested is None
                        else commit_requested)

    def ack(self, producer: str, idx: int, partition: int, offset: int, t: float | None = None) -> dict:
        return self.add("ack", t, producer=producer, idx=idx, partition=partition, offset=offset)

    def fail(self, producer: str, idx: int, error: str = "error", t: float | None = None) -> dict:
        return self.add("fail", t, producer=producer, idx=idx, error=error)

    def unknown(self, producer: str, idx: int, reason: str = "no delivery report",
                t: float | None = None) -> dict:
        return self.add("unknown", t, producer=producer, idx=idx, reason=reason)

    def retry(self, producer: str, t_start: float, t: float) -> dict:
        return self.add("retry", t, producer=producer, t_start=t_start)

    def poll(self, consumer: str, records: list[tuple[int, int, str]], t: float | None = None) -> dict:
        return self.add("poll", t, consumer=consumer, records=[list(r) for r in records])

    def seek(self, consumer: str, partition: int, offset: int, t: float | None = None,
             **extra) -> dict:
        return self.add("seek", t, consumer=consumer, partition=partition, offset=offset, **extra)

    def assignment(self, kind: str, consumer: str, partitions: list[int], *,
                   assignment: list[int] | None = None, group: str | None = None,
                   member: str | None = None, generation: int | None = None,
                   positions: dict[int, int] | None = None, t: float | None = None) -> dict:
        assert kind in ASSIGNMENT_EVENTS, kind
        fields: dict[str, Any] = dict(
            consumer=consumer, group=group, member=member, generation=generation,
            partitions=sorted(partitions),
            assignment=sorted(partitions if assignment is None else assignment))
        if positions is not None:
            fields["positions"] = sorted([p, o] for p, o in positions.items())
        return self.add(kind, t, **fields)

    def commit(self, consumer: str, offsets: dict[int, int], *, group: str, member: str | None,
               generation: int | None, t_invoke: float | None = None, t: float | None = None,
               ok: bool = True, error: str | None = None) -> dict:
        t_invoke = self._t(t_invoke)
        return self.add("commit", t, consumer=consumer, group=group, member=member,
                        generation=generation, offsets=sorted([p, o] for p, o in offsets.items()),
                        t_invoke=t_invoke, ok=ok, error=error)

    def committed(self, group: str, offsets: dict[int, int], t_invoke: float | None = None,
                  t: float | None = None) -> dict:
        t_invoke = self._t(t_invoke)
        return self.add("committed", t, group=group,
                        offsets=sorted([p, o] for p, o in offsets.items()), t_invoke=t_invoke)

    def fault(self, fault: str, node: Any, t_start: float | None = None, t: float | None = None,
              **params) -> dict:
        t_start = self._t(t_start)
        return self.add("fault", t, fault=fault, node=node, t_start=t_start, params=params)

    def server(self, node: Any, what: str, detail: str = "", t: float | None = None) -> dict:
        return self.add("server", t, node=node, what=what, detail=detail)

    def probe(self, node: Any, what: str, expected: str, observed: str, detail: str = "",
              t: float | None = None) -> dict:
        return self.add("probe", t, node=node, what=what, expected=expected, observed=observed,
                        detail=detail)

    def disk_fault(self, node: Any, t_start: float | None = None, t: float | None = None,
                   expect_resume: bool = False, replicated: bool = False, **plan) -> dict:
        t_start = self._t(t_start)
        return self.add("disk_fault", t, node=node, t_start=t_start, plan=plan,
                        expect_resume=expect_resume, replicated=replicated)

    def corruption(self, partition: int, first_offset: int, end_offset: int,
                   records: list[tuple[int, str | None]] | None = None, *, how: str = "flip",
                   batch: tuple[int, int] | None = None, offset: int | None = None,
                   corrupted_value: str | None = None, node: Any = 1, topic: str = "t",
                   file: str = "", position: int = 0, t: float | None = None) -> dict:
        batch = list(batch) if batch is not None else [first_offset, first_offset]
        return self.add("corruption", t, node=node, topic=topic, partition=partition, how=how,
                        file=file, position=position,
                        offset=first_offset if offset is None else offset, batch=batch,
                        first_offset=first_offset, end_offset=end_offset,
                        records=[list(r) for r in records or []], corrupted_value=corrupted_value)

    def replica(self, node: Any, partition: int, records: list[tuple[int, str | None]],
                opaque: list[tuple[int, int]] | None = None, t: float | None = None) -> dict:
        return self.add("replica", t, node=node, partition=partition,
                        records=[list(r) for r in records], opaque=[list(r) for r in opaque or []])

    def drain(self, consumer: str, high_watermarks: dict[int, int], positions: dict[int, int],
              complete: bool, error: str | None = None, t: float | None = None) -> dict:
        return self.add("drain", t, consumer=consumer,
                        high_watermarks=sorted([p, o] for p, o in high_watermarks.items()),
                        positions=sorted([p, o] for p, o in positions.items()),
                        complete=complete, error=error)

    # -- (de)serialisation ------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "meta": self.meta,
            "producers": {k: asdict(v) for k, v in self.producers.items()},
            "consumers": {k: asdict(v) for k, v in self.consumers.items()},
            "events": self.events,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "History":
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} history (format {data.get('format')!r})")
        h = cls(data.get("meta"))
        h.producers = {k: ProducerInfo(**v) for k, v in data.get("producers", {}).items()}
        h.consumers = {k: ConsumerInfo(**v) for k, v in data.get("consumers", {}).items()}
        h.extend(data.get("events", []))
        return h

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "History":
        return cls.from_json(json.loads(Path(path).read_text()))

    # -- derived views -------------------------------------------------------------------------
    def index(self) -> "HistoryIndex":
        if self._index is None:
            self._index = HistoryIndex(self)
        return self._index


def load_events_file(path: str | Path) -> list[dict[str, Any]]:
    """Events of a JSON-lines file written by a workload process.  A torn last line (the writer
    was killed mid-write) is ignored; every complete line must parse."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    complete = data[: data.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.decode("utf-8").splitlines() if line.strip()]


class HistoryIndex:
    """Views of a history computed in one pass.  `problems` lists events that contradict the
    model (outcome without a send, two outcomes for one send, one value sent twice): the
    well-formedness check reports them."""

    def __init__(self, h: History):
        self.history = h
        self.sends: dict[tuple[str, int], Send] = {}
        self.sends_by_value: dict[str, list[Send]] = {}
        self.reads: list[Read] = []
        self.problems: list[str] = []
        self.fault_windows: list[tuple[float, float]] = []
        self.retry_windows: dict[str, list[tuple[float, float]]] = {}
        self.drains: list[dict[str, Any]] = []
        self.corruptions: list[dict[str, Any]] = []
        self.txns: dict[tuple[str, int], Txn] = {}
        self._visible: dict[tuple[str, int], bool] | None = None
        self._must_see: dict[tuple[int, int], frozenset] | None = None
        self._acked_at: dict[tuple[int, int], list[Send]] | None = None
        self._recorded: dict[int, dict[int, str]] = {}
        for ev in h.events:
            kind = ev["type"]
            if kind == "send":
                key = (ev["producer"], ev["idx"])
                if key in self.sends:
                    self.problems.append(f"send {key} invoked twice")
                    continue
                s = Send(ev["producer"], ev["idx"], ev["value"], ev.get("partition"), ev["t"],
                         txn=ev.get("txn"))
                self.sends[key] = s
                self.sends_by_value.setdefault(s.value, []).append(s)
                if s.txn is not None:
                    t = self.txns.setdefault((s.producer, s.txn), Txn(s.producer, s.txn))
                    t.idxs.append(s.idx)
            elif kind in OUTCOME_EVENTS:
                key = (ev["producer"], ev["idx"])
                s = self.sends.get(key)
                if s is None:
                    self.problems.append(f"{kind} for send {key} that was never invoked")
                    continue
                if s.outcome is not None:
                    self.problems.append(f"send {key} has two outcomes: {s.outcome} then {kind}")
                    continue
                s.t_outcome = ev["t"]
                if kind == "ack":
                    s.outcome = "acked"
                    s.ack_partition, s.ack_offset = ev["partition"], ev["offset"]
                elif kind == "fail":
                    s.outcome, s.error = "failed", ev.get("error")
                else:
                    s.outcome, s.error = "unknown", ev.get("reason")
            elif kind == "poll":
                for p, o, v in ev["records"]:
                    self.reads.append(Read(ev["consumer"], p, o, v, ev["t"]))
            elif kind == "fault":
                self.fault_windows.append((ev["t_start"], ev["t"]))
            elif kind == "retry":
                self.retry_windows.setdefault(ev["producer"], []).append((ev["t_start"], ev["t"]))
            elif kind == "client_error" and ev.get("client") in h.producers:
                # A transport error seen by a producer: requests in flight then may be retried.
                self.retry_windows.setdefault(ev["client"], []).append((ev["t"], ev["t"]))
            elif kind == "drain":
                self.drains.append(ev)
            elif kind == "corruption":
                self.corruptions.append(ev)
            elif kind == "txn":
                key = (ev["producer"], ev["txn"])
                t = self.txns.setdefault(key, Txn(ev["producer"], ev["txn"]))
                if t.outcome is not None:
                    self.problems.append(f"transaction {key} ended twice")
                    continue
                t.t_start, t.t_end = ev.get("t_start"), ev["t"]
                t.decision, t.commit_requested = ev.get("decision"), ev.get("commit_requested")
                t.outcome, t.error = ev["outcome"], ev.get("error")
                if sorted(ev.get("idxs", [])) != sorted(t.idxs):
                    self.problems.append(f"transaction {key}: its event names sends "
                                         f"{ev.get('idxs')}, its sends say {t.idxs}")
        for value, sends in self.sends_by_value.items():
            if len(sends) > 1:
                self.problems.append(
                    f"value {value!r} sent {len(sends)} times "
                    f"({[(s.producer, s.idx) for s in sends]}); values must be unique")

    def txn_of(self, s: Send) -> Txn | None:
        return None if s.txn is None else self.txns.get((s.producer, s.txn))

    def read_committed_reads(self) -> list[Read]:
        """Reads by consumers that must see only committed data (every consumer but a
        read_uncommitted one; an undeclared consumer counts as read_committed)."""
        cs = self.history.consumers
        return [r for r in self.reads if r.consumer not in cs or cs[r.consumer].read_committed]

    def visible_txns(self) -> dict[tuple[str, int], bool]:
        """Which transactions read_committed readers must see: committed ones, and those of
        unknown outcome that could have committed and of which such a reader saw a value (then
        they did commit)."""
        if self._visible is None:
            seen = {r.value for r in self.read_committed_reads()}
            self._visible = {}
            for key, t in self.txns.items():
                self._visible[key] = t.outcome == "committed" or (
                    t.may_commit and any(self.sends[(t.producer, i)].value in seen
                                         for i in t.idxs if (t.producer, i) in self.sends))
        return self._visible

    def must_be_visible(self, s: Send) -> bool:
        """Is s acknowledged as visible to read_committed readers?  A non-transactional send: its
        ack.  A transactional one: its transaction's visibility (visible_txns)."""
        if s.txn is None:
            return s.acked
        return self.visible_txns().get((s.producer, s.txn), False)

    def must_see(self, partition: int, offset: int) -> set[str]:
        """The isolation levels ("read_committed", "read_uncommitted") of consumers that must
        return the record at (partition, offset).  Where a send was acked or a value read: a
        transactional send's record must be returned by read_committed consumers only if its
        transaction must be visible (visible_txns), any other record (a plain send's, or a
        value nobody sent) by every consumer; read_uncommitted consumers must return every
        record.  Empty: the history knows of no record there (e.g. a transaction marker, which
        no consumer returns)."""
        if self._must_see is None:
            both = frozenset({"read_committed", "read_uncommitted"})
            uncommitted = frozenset({"read_uncommitted"})
            visible = self.visible_txns()

            def levels(sends: list[Send]) -> frozenset:
                txn = [s for s in sends if s.txn is not None]
                if txn and not any(visible.get((s.producer, s.txn), False) for s in txn):
                    return uncommitted
                return both

            self._must_see = {}
            for r in self.reads:
                key = (r.partition, r.offset)
                self._must_see[key] = self._must_see.get(key, frozenset()) | levels(
                    self.sends_by_value.get(r.value, []))
            for s in self.sends.values():
                if s.acked:
                    key = (s.ack_partition, s.ack_offset)
                    self._must_see[key] = self._must_see.get(key, frozenset()) | levels([s])
        return set(self._must_see.get((partition, offset), ()))

    def destroyed_by(self, s: Send) -> dict[str, Any] | None:
        """The first corruption that destroyed s's acknowledged copy: one on its partition, after
        the ack, whose destroyed range holds the acknowledged offset."""
        if not s.acked or s.t_outcome is None:
            return None
        for c in self.corruptions:
            if (c["partition"] == s.ack_partition and c["first_offset"] <= s.ack_offset < c["end_offset"]
                    and s.t_outcome < c["t"]):
                return c
        return None

    def destroyed_values(self, partition: int, offset: int) -> tuple[list[dict[str, Any]], set[str]]:
        """The corruptions whose destroyed range holds (partition, offset), and the values the
        offset held before each of them: as recorded from the segment, or else the value of a send
        acknowledged there before it."""
        covering = [c for c in self.corruptions if c["partition"] == partition
                    and c["first_offset"] <= offset < c["end_offset"]]
        if not covering:
            return [], set()
        if self._acked_at is None:
            self._acked_at = {}
            for s in self.sends.values():
                if s.acked:
                    self._acked_at.setdefault((s.ack_partition, s.ack_offset), []).append(s)
        olds: set[str] = set()
        for c in covering:
            key = id(c)
            if key not in self._recorded:
                self._recorded[key] = {o: v for o, v in c.get("records") or [] if v is not None}
            if offset in self._recorded[key]:
                olds.add(self._recorded[key][offset])
            olds.update(s.value for s in self._acked_at.get((partition, offset), [])
                        if s.t_outcome < c["t"])
        return covering, olds

    def may_have_been_retried(self, s: Send) -> bool:
        """Could the client have sent s more than once?  Only if its producer retries, and its
        lifetime (send invoked .. outcome known; open-ended without an outcome) overlaps a fault
        or a window in which the client reported retries or a transport error: a client resends a
        request only after the request failed or timed out."""
        info = self.history.producers.get(s.producer)
        if info is None or not info.retries:
            return False
        start = s.t_invoke
        end = s.t_outcome if s.t_outcome is not None else math.inf
        windows = self.fault_windows + self.retry_windows.get(s.producer, [])
        return any(a <= end and start <= b for a, b in windows)
