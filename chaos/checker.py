"""Checks over a chaos history: one function per anomaly, and check(history) -> Report.

Each check_* function takes a History (chaos/history.py) and returns a list of Anomaly.  An
anomaly with allowed=True is something Kafka's contract permits for that client configuration
(e.g. a duplicate from a non-idempotent producer that retried): it is counted and shown, but does
not fail the run.  What each check means, precisely:

  Transactions.  A transactional producer's delivery report ("ack") says that a record was
  written in its transaction, not that it is visible: that is decided by the transaction (a "txn"
  event: committed, aborted, or unknown).  Readers are read_committed (every group consumer and
  the final drain) unless declared read_uncommitted (a second drain in scenarios with
  transactions, which shows that aborted records are in the log).  A transaction "must be
  visible" if it committed, or if its outcome is unknown, its producer asked to commit it, and a
  read_committed reader saw one of its values (then it did commit).  Below, "acked" means the
  delivery report unless said otherwise; "lost" ignores transactional sends (committed-lost and
  txn-atomicity cover them) and counts only read_committed reads.

  lost              An acked non-transactional send whose value is never observed by any
                    read_committed read: no poll of any consumer, including the final drain (manual
                    assignment of every partition from offset 0 up to the high watermark after all
                    faults were healed).  A send acked
                    before an injected corruption (a "corruption" event) must have survived it:
                    only the final drain's reads made after the last corruption count for it (a
                    group member may return records it fetched before).
  lost-to-injected-corruption
                    Such a send, not read by that drain, whose acknowledged offset lies in the range
                    the corruption destroyed: [the damaged batch, end of the log at the stop).  On a
                    single node that is data loss by design (nothing to repair from): counted and
                    shown, not a failure.  Anywhere else it is "lost".
  wrong-ack-offset  An acked send whose value is read, but never at the (partition, offset) its
                    delivery report gave.
  duplicate         One value read at two or more distinct (partition, offset).  Allowed
                    (duplicate-allowed) only when its producer is not idempotent, may resend on its
                    own (retries enabled), and the send may have been retried: its lifetime overlaps
                    a fault or a window in which the client reported retries or a transport error.
                    Reading the same (partition, offset) twice (re-delivery) is not a duplicate.
                    Also allowed: every copy but one was read at an offset a corruption destroyed,
                    holding it before, and that copy was not the acknowledged one (the producer
                    re-sent, after the restart, a message whose first copy the corruption removed).
  aborted-read      A read_committed reader (a group member or the final drain) read a value of a
                    transaction that was aborted (abort_transaction returned), or whose producer
                    never asked to commit it (its outcome unknown: only EndTxn(commit) commits, a
                    fencing InitProducerId aborts).
  committed-lost    A value of a committed transaction (commit_transaction returned) that the final
                    read_committed drain did not read (a transaction's records are all delivered
                    before its commit returns, whatever their delivery reports said; without a
                    read_committed drain in the history, every read_committed read counts).
  txn-atomicity     A transaction of unknown outcome, one of whose values a read_committed reader
                    saw (so it committed), with values the final read_committed drain did not read:
                    partially visible.  (A committed one partially visible is committed-lost, an
                    aborted one aborted-read.)
  phantom           A value read that no producer ever sent.
  inconsistent-offset
                    One (partition, offset) read with two different values (by any consumers, at
                    any times, including the drain).  Allowed (offset-reused-after-corruption) only
                    at an offset a corruption destroyed, when all values but at most one are what
                    the offset held before the corruption (as recorded from the segment, or
                    acknowledged there before it): the log was cut there, and later writes reuse
                    the offsets.  A value spelled by the corrupted bytes is never allowed.
  replica-diverged  Cluster scenarios: after the run every node's copy of the topic's logs is read
                    from its segment files ("replica" events, recorded after every node caught up
                    with the leaders and stopped cleanly).  Below the final drain's high watermark
                    (the committed part of the log), every replica must hold exactly the records
                    the drain read: one anomaly per offset where a replica holds another value,
                    and one per range of offsets a replica lacks.  Offsets at or beyond the high
                    watermark (not committed) and batches the parser cannot read (compressed) are
                    not compared.
  corrupt-served    A record the corruption damaged was served: a value as the flipped bytes spell
                    it was read, or the final drain (after the corruption) read a record of the
                    damaged batch with its old value.
  nonmonotonic-poll Within one consumer, between two assignment changes (assign / revoke / lost
                    callbacks, or a seek), a partition's offset is not greater than the previous one
                    it returned (a rewind or a repeat without a rebalance).
  skipped-poll      Same scope: a partition's next offset is more than one past the previous one (or,
                    after an assignment with known start positions or a seek to a known offset, the
                    first offset is not that one).  Without transactional producers in the history
                    Chronik's logs have no gaps (no compaction, no transaction markers), so every
                    skip is records the consumer never got.  With them, markers and (for
                    read_committed readers) aborted records are legitimately skipped, so a skip is
                    reported only if a skipped offset is known to hold a record this consumer must
                    return: one a read_committed reader returned, or a send acked there that must
                    be visible (for a read_uncommitted reader: any record read or acked there).
  offset-out-of-range
                    A consumer's position was out of range (it reset explicitly: a seek event with
                    reason offset-out-of-range) on a partition where no earlier corruption cut the
                    log below that position: the server lost or hid records the consumer had.
  reorder           One producer's acked sends to one partition, taken in send order, have
                    decreasing offsets (a transactional producer's too: its records are in the
                    log in send order whatever becomes of their transactions).  Allowed (reorder-allowed) only for a non-idempotent producer
                    with retries and more than one request in flight, when the earlier send (the one
                    that landed later) may have been retried (as for duplicates).  Two sends are not
                    compared when a corruption destroyed the earlier one's offset between their
                    acks (later writes reuse the offsets); each log as it was before a corruption
                    and the final one are checked.
  commit-backwards  One member, within one generation of its group, gets a commit acknowledged for a
                    partition with a lower offset than an earlier acknowledged commit of its own.
                    Across generations or members a lower commit is legal in Kafka (after a
                    rebalance or a seek); commits whose generation is unknown are not compared.
  commit-regressed  The server hands out a committed offset lower than every commit that could be the
                    latest one applied.  Observations: committed offsets read back (OffsetFetch), and
                    the first offset a group member polls after being assigned a partition (the
                    member starts at the committed offset).  For an observation made somewhere in
                    [t0, t1], a commit could be the latest applied unless it was invoked after t1, or
                    it succeeded and another successful commit was invoked after it was acknowledged
                    and acknowledged before t0.  Failed commits may have been applied at any time
                    after they were invoked, so they are always candidates.  The observation must not
                    be below the smallest candidate.  Catches commits lost in a crash.
  double-ownership  Two members of one group are assigned the same partition in the same generation.
                    Generations come from the client (librdkafka's consumer group metadata read in
                    the rebalance callback); assignments with an unknown generation are not checked.
                    This checks what the group coordinator handed out, not whether a member that left
                    the group stopped reading in time (Kafka allows such zombies until they notice).
  drain-incomplete  The final drain did not reach the high watermark of every partition (or did not
                    run although the history requires it), so "lost" could not be decided.  With a
                    read_committed and a read_uncommitted drain: also when the former's end (the
                    last stable offset) is below the latter's high watermark, after every producer
                    stopped: a transaction was left open.
  acked-during-disk-fault
                    A send invoked after the server's fault layer had fail_syncs or disk_full on,
                    acknowledged before it was cleared ("disk_fault" event): its data was written
                    after every fsync started failing (or could not be written at all), so it was
                    acknowledged without being durable.  Not for a fault on one node of a cluster
                    (a "replicated" disk_fault): the other replicas may acknowledge meanwhile.
  server-failure    The harness saw the server misbehave: it did not become ready after a restart,
                    exited non-zero on SIGTERM, exited on its own, or logged a panic.
  probe-failed      A "probe" event whose observed state is not the expected one: e.g. /health/ready
                    not 503 while fsyncs fail, not 200 while the disk is full, `chronik-server check`
                    not exiting 1 on a corrupted data dir (or not 0 on a clean one).
  no-progress       A producer got no send acknowledged at all (a transactional one: no transaction
                    committed), or a consumer group read nothing
                    although sends were acknowledged: a scenario that tests nothing must not pass.
                    Also: after a disk fault that must heal without a restart (disk_fault with
                    expect_resume), a producer that kept sending got none of those sends acked.
  malformed-history The history contradicts its own model (an outcome without a send, two outcomes
                    for one send, one value sent twice, a transaction ended twice or its event
                    naming other sends than were sent in it).  A harness bug, never a server one.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from chaos.history import ASSIGNMENT_EVENTS, History, HistoryIndex, Send

# Every kind, in report order, with a one-line description.
KINDS: dict[str, str] = {
    "lost": "acked but never read",
    "lost-to-injected-corruption": "acked in the range an injected corruption destroyed (by design)",
    "wrong-ack-offset": "read, but never at the offset it was acked with",
    "duplicate": "one value at several offsets",
    "duplicate-allowed": "duplicate from a non-idempotent producer that may have retried, or a "
                         "re-send of a copy a corruption destroyed",
    "aborted-read": "read_committed reader saw a value of an aborted transaction",
    "committed-lost": "a committed transaction's value missing from the read_committed drain",
    "txn-atomicity": "a transaction of unknown outcome partially visible",
    "phantom": "read a value nobody sent",
    "inconsistent-offset": "one offset read with different values",
    "offset-reused-after-corruption": "an offset a corruption destroyed, reused by a later write",
    "replica-diverged": "a replica's committed log differs from what the leader served",
    "corrupt-served": "a record damaged by an injected corruption was served",
    "nonmonotonic-poll": "consumer went back without a rebalance",
    "skipped-poll": "consumer skipped offsets without a rebalance",
    "offset-out-of-range": "a consumer's position fell beyond a log no corruption cut",
    "reorder": "one producer's sends out of order in a partition",
    "reorder-allowed": "reorder from a non-idempotent producer that may have retried",
    "commit-backwards": "a member's commits went backwards within one generation",
    "commit-regressed": "server returned a committed offset below the latest commit",
    "double-ownership": "one partition owned by two members in one generation",
    "drain-incomplete": "the final drain did not reach the high watermark",
    "acked-during-disk-fault": "acked although written while fsyncs failed or the disk was full",
    "server-failure": "the server did not restart, exited uncleanly, or panicked",
    "probe-failed": "the server's state contradicted what an injected fault implies",
    "no-progress": "the workload achieved nothing",
    "malformed-history": "harness bug: the history contradicts itself",
}
ALLOWED_KINDS = frozenset({"duplicate-allowed", "reorder-allowed", "lost-to-injected-corruption",
                           "offset-reused-after-corruption"})

# Details of at most this many anomalies per kind are kept in a report (all are counted).
MAX_DETAILS_PER_KIND = 50


@dataclass
class Anomaly:
    kind: str
    detail: str                                   # one line, for humans
    data: dict[str, Any] = field(default_factory=dict)  # JSON-able, for the saved report

    @property
    def allowed(self) -> bool:
        return self.kind in ALLOWED_KINDS


@dataclass
class Report:
    anomalies: list[Anomaly]
    stats: dict[str, Any]

    @property
    def failures(self) -> list[Anomaly]:
        return [a for a in self.anomalies if not a.allowed]

    @property
    def ok(self) -> bool:
        return not self.failures

    def counts(self) -> dict[str, int]:
        c = Counter(a.kind for a in self.anomalies)
        return {k: c[k] for k in KINDS if c[k]} | {k: n for k, n in c.items() if k not in KINDS}

    def of(self, kind: str) -> list[Anomaly]:
        return [a for a in self.anomalies if a.kind == kind]

    def kinds(self) -> set[str]:
        return {a.kind for a in self.anomalies}

    def summary(self) -> str:
        counts = self.counts()
        if not counts:
            return "-"
        return ", ".join(f"{k}: {n}" for k, n in counts.items())

    def to_json(self) -> dict[str, Any]:
        kept: dict[str, int] = Counter()
        details = []
        for a in self.anomalies:
            if kept[a.kind] < MAX_DETAILS_PER_KIND:
                kept[a.kind] += 1
                details.append(asdict(a))
        return {"ok": self.ok, "counts": self.counts(), "stats": self.stats, "anomalies": details}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _positions_by_value(ix: HistoryIndex) -> dict[str, set[tuple[int, int]]]:
    out: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for r in ix.reads:
        out[r.value].add((r.partition, r.offset))
    return out


def _values_by_position(ix: HistoryIndex) -> dict[tuple[int, int], dict[str, set[str]]]:
    out: dict[tuple[int, int], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in ix.reads:
        out[(r.partition, r.offset)][r.value].add(r.consumer)
    return out


def _send_ref(s: Send) -> dict[str, Any]:
    return {"producer": s.producer, "idx": s.idx, "value": s.value, "outcome": s.outcome,
            "acked_at": None if s.ack_offset is None else [s.ack_partition, s.ack_offset],
            "t_invoke": s.t_invoke, "t_outcome": s.t_outcome}


def _drain_high_watermarks(ix: HistoryIndex) -> dict[int, int]:
    hw: dict[int, int] = {}
    for d in ix.drains:
        for p, o in d["high_watermarks"]:
            hw[p] = max(hw.get(p, -1), o)
    return hw


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------

def check_well_formed(h: History) -> list[Anomaly]:
    return [Anomaly("malformed-history", p) for p in h.index().problems]


def _drain_reads_after(ix: HistoryIndex, t: float) -> set[str]:
    drains = {name for name, c in ix.history.consumers.items()
              if c.kind == "drain" and c.read_committed}
    return {r.value for r in ix.reads if r.consumer in drains and r.t > t}


def check_lost(h: History) -> list[Anomaly]:
    ix = h.index()
    read_values = {r.value for r in ix.read_committed_reads()}
    hw = _drain_high_watermarks(ix)
    last_corruption = max((c["t"] for c in ix.corruptions), default=None)
    survived = _drain_reads_after(ix, last_corruption) if last_corruption is not None else set()
    out = []
    for s in ix.sends.values():
        if not s.acked or s.txn is not None:
            continue
        if last_corruption is not None and s.t_outcome < last_corruption:
            if s.value in survived:
                continue
            c = ix.destroyed_by(s)
            if c is not None:
                out.append(Anomaly(
                    "lost-to-injected-corruption",
                    f"{s.value!r} from {s.producer} acked at {s.ack_partition}@{s.ack_offset}, in "
                    f"[{c['first_offset']}, {c['end_offset']}) destroyed by the injected "
                    f"corruption ({c['how']}) of {c['file']}",
                    _send_ref(s) | {"corruption_t": c["t"]}))
                continue
            before = s.value in read_values
            out.append(Anomaly(
                "lost",
                f"{s.value!r} from {s.producer} acked at {s.ack_partition}@{s.ack_offset}, outside "
                f"every destroyed range, not read by the final drain after the injected corruption"
                + (" (it was read before it)" if before else ""),
                _send_ref(s) | {"beyond_high_watermark": s.ack_partition in hw
                                and s.ack_offset >= hw[s.ack_partition],
                                "read_before_corruption": before}))
        elif s.value not in read_values:
            beyond = s.ack_partition in hw and s.ack_offset >= hw[s.ack_partition]
            out.append(Anomaly(
                "lost",
                f"{s.value!r} from {s.producer} acked at {s.ack_partition}@{s.ack_offset} was never read"
                + (f" (drain high watermark {hw[s.ack_partition]})" if beyond else ""),
                _send_ref(s) | {"beyond_high_watermark": beyond}))
    return out


def _txn_ref(ix: HistoryIndex, t) -> dict[str, Any]:
    return {"producer": t.producer, "txn": t.txn, "decision": t.decision,
            "commit_requested": t.commit_requested, "outcome": t.outcome, "error": t.error,
            "t_start": t.t_start, "t_end": t.t_end,
            "values": [ix.sends[(t.producer, i)].value for i in t.idxs]}


def check_aborted_reads(h: History) -> list[Anomaly]:
    ix = h.index()
    out = []
    for r in ix.read_committed_reads():
        for s in ix.sends_by_value.get(r.value, []):
            t = ix.txn_of(s)
            if t is None or t.may_commit:
                continue
            why = ("aborted" if t.outcome == "aborted" else
                   f"outcome {t.outcome or 'not recorded'}, commit never requested")
            out.append(Anomaly(
                "aborted-read",
                f"{r.consumer} (read_committed) read {r.value!r} at {r.partition}@{r.offset}: "
                f"transaction {t.txn} of {t.producer} was {why}",
                _send_ref(s) | {"consumer": r.consumer, "read_at": [r.partition, r.offset],
                                "t_read": r.t, "transaction": _txn_ref(ix, t)}))
    return out


def _final_committed_reads(ix: HistoryIndex) -> set[str]:
    """Values the final read_committed drain(s) read; without such a drain, every read_committed
    read."""
    cs = ix.history.consumers
    drains = {n for n, c in cs.items() if c.kind == "drain" and c.read_committed}
    reads = ix.read_committed_reads()
    if drains:
        reads = [r for r in reads if r.consumer in drains]
    return {r.value for r in reads}


def check_committed_lost(h: History) -> list[Anomaly]:
    ix = h.index()
    final = _final_committed_reads(ix)
    hw = _drain_high_watermarks(ix)
    out = []
    for (producer, n), t in sorted(ix.txns.items()):
        if t.outcome != "committed":
            continue
        missing = [ix.sends[(producer, i)] for i in t.idxs
                   if ix.sends[(producer, i)].value not in final]
        for s in missing:
            beyond = s.acked and s.ack_partition in hw and s.ack_offset >= hw[s.ack_partition]
            out.append(Anomaly(
                "committed-lost",
                f"{s.value!r} of committed transaction {n} of {producer} "
                f"({len(missing)} of its {len(t.idxs)} values missing), "
                + (f"written at {s.ack_partition}@{s.ack_offset}, " if s.acked else "")
                + "not read by the final read_committed drain"
                + (f" (beyond its high watermark {hw[s.ack_partition]})" if beyond else ""),
                _send_ref(s) | {"transaction": _txn_ref(ix, t), "beyond_high_watermark": beyond}))
    return out


def check_txn_atomicity(h: History) -> list[Anomaly]:
    ix = h.index()
    final = _final_committed_reads(ix)
    seen = {r.value for r in ix.read_committed_reads()}
    visible = ix.visible_txns()
    out = []
    for key, t in sorted(ix.txns.items()):
        if t.outcome == "committed" or not t.may_commit or not visible.get(key):
            continue
        values = [ix.sends[(t.producer, i)].value for i in t.idxs]
        shown = [v for v in values if v in seen]
        missing = [v for v in values if v not in final]
        if missing:
            out.append(Anomaly(
                "txn-atomicity",
                f"transaction {t.txn} of {t.producer} (outcome {t.outcome or 'not recorded'}"
                + (f": {t.error}" if t.error else "") + f"): {len(shown)} of its {len(values)} "
                f"values read committed ({shown[:3]}), {len(missing)} missing from the final "
                f"read_committed drain ({missing[:3]})",
                _txn_ref(ix, t) | {"read_committed": shown, "missing_from_drain": missing}))
    return out


def check_wrong_ack_offset(h: History) -> list[Anomaly]:
    ix = h.index()
    where = _positions_by_value(ix)
    at = _values_by_position(ix)
    out = []
    for s in ix.sends.values():
        if not s.acked or s.value not in where:
            continue
        acked = (s.ack_partition, s.ack_offset)
        if acked not in where[s.value]:
            there = sorted(at.get(acked, {}))
            out.append(Anomaly(
                "wrong-ack-offset",
                f"{s.value!r} from {s.producer} acked at {acked[0]}@{acked[1]} but read at "
                f"{sorted(where[s.value])}; {acked[0]}@{acked[1]} holds {there or 'nothing read'}",
                _send_ref(s) | {"read_at": sorted(where[s.value]), "values_at_acked_offset": there}))
    return out


def _destroyed_copies(ix: HistoryIndex, s: Send, positions: set[tuple[int, int]]) -> set:
    """The positions of s's value that a corruption destroyed while holding it, except the one s
    was acknowledged at (an acknowledged copy must not be re-sent by an idempotent producer)."""
    out = set()
    for p, o in positions:
        if s.acked and (p, o) == (s.ack_partition, s.ack_offset):
            continue
        covering, olds = ix.destroyed_values(p, o)
        if covering and s.value in olds:
            out.add((p, o))
    return out


def check_duplicates(h: History) -> list[Anomaly]:
    ix = h.index()
    out = []
    for value, positions in _positions_by_value(ix).items():
        if len(positions) < 2:
            continue
        sends = ix.sends_by_value.get(value)
        if not sends:
            continue  # a phantom: reported by check_phantoms
        s = sends[0]
        destroyed = _destroyed_copies(ix, s, positions)
        if destroyed and len(positions - destroyed) <= 1:
            out.append(Anomaly(
                "duplicate-allowed",
                f"{value!r} from {s.producer} read at {len(positions)} offsets {sorted(positions)} "
                f"(its copies at {sorted(destroyed)} were destroyed by the injected corruption, "
                f"and were not the acknowledged ones)",
                _send_ref(s) | {"read_at": sorted(positions), "destroyed_copies": sorted(destroyed)}))
            continue
        info = h.producers.get(s.producer)
        retried = ix.may_have_been_retried(s)
        allowed = info is not None and not info.idempotent and retried
        kind = "duplicate-allowed" if allowed else "duplicate"
        why = ("non-idempotent producer, send may have been retried" if allowed else
               "idempotent producer" if info is not None and info.idempotent else
               "producer without retries" if info is not None and not info.retries else
               "send overlapped no fault or client retry" if info is not None else
               "unknown producer")
        out.append(Anomaly(
            kind, f"{value!r} from {s.producer} read at {len(positions)} offsets "
                  f"{sorted(positions)} ({why})",
            _send_ref(s) | {"read_at": sorted(positions), "may_have_been_retried": retried}))
    return out


def check_phantoms(h: History) -> list[Anomaly]:
    ix = h.index()
    out = []
    for value, positions in _positions_by_value(ix).items():
        if value not in ix.sends_by_value:
            out.append(Anomaly("phantom", f"{value!r} read at {sorted(positions)} was never sent",
                               {"value": value, "read_at": sorted(positions)}))
    return out


def check_inconsistent_offsets(h: History) -> list[Anomaly]:
    ix = h.index()
    corrupted = {c["corrupted_value"] for c in ix.corruptions if c.get("corrupted_value")}
    out = []
    for (p, o), values in sorted(_values_by_position(ix).items()):
        if len(values) > 1:
            vs = {v: sorted(cs) for v, cs in sorted(values.items())}
            covering, olds = ix.destroyed_values(p, o)
            new = set(values) - olds
            if covering and len(new) <= 1 and not new & corrupted:
                out.append(Anomaly(
                    "offset-reused-after-corruption",
                    f"{p}@{o} read with {len(values)} values: {vs}; it held {sorted(olds)} before the "
                    f"injected corruption destroyed it",
                    {"partition": p, "offset": o, "values": vs, "old": sorted(olds)}))
                continue
            out.append(Anomaly("inconsistent-offset",
                               f"{p}@{o} read with {len(values)} values: {vs}",
                               {"partition": p, "offset": o, "values": vs}))
    return out


def check_replicas(h: History) -> list[Anomaly]:
    ix = h.index()
    hw = _drain_high_watermarks(ix)
    replicas = [ev for ev in h.events if ev["type"] == "replica"]
    if not replicas or not hw:
        return []
    drains = {name for name, c in h.consumers.items() if c.kind == "drain"}
    served: dict[tuple[int, int], set[str]] = defaultdict(set)
    for r in ix.reads:
        if r.consumer in drains:
            served[(r.partition, r.offset)].add(r.value)
    out = []
    for ev in replicas:
        node, p = ev["node"], ev["partition"]
        if p not in hw:
            continue
        held = {o: v for o, v in ev["records"] if o < hw[p]}
        opaque = [(a, b) for a, b in ev.get("opaque") or []]
        for o, v in sorted(held.items()):
            want = served.get((p, o))
            if want is not None and v not in want:
                out.append(Anomaly(
                    "replica-diverged",
                    f"node {node} holds {v!r} at {p}@{o}, the drain read {sorted(want)} there",
                    {"node": node, "partition": p, "offset": o, "replica_value": v,
                     "served": sorted(want)}))
        start = None
        for o in range(hw[p] + 1):
            missing = (o < hw[p] and o not in held
                       and not any(a <= o <= b for a, b in opaque))
            if missing and start is None:
                start = o
            elif not missing and start is not None:
                out.append(Anomaly(
                    "replica-diverged",
                    f"node {node} lacks {p}@[{start}, {o}) below the high watermark {hw[p]}",
                    {"node": node, "partition": p, "missing": [start, o], "high_watermark": hw[p]}))
                start = None
    return out


def check_corrupt_served(h: History) -> list[Anomaly]:
    ix = h.index()
    out = []
    drains = {name for name, c in h.consumers.items() if c.kind == "drain"}
    for c in ix.corruptions:
        bad = c.get("corrupted_value")
        first, last = c.get("batch") or [c["first_offset"], c["first_offset"]]
        held = {o: v for o, v in c.get("records") or [] if first <= o <= last and v is not None}
        for r in ix.reads:
            if bad is not None and r.value == bad:
                out.append(Anomaly(
                    "corrupt-served",
                    f"{r.consumer} read {r.value!r} at {r.partition}@{r.offset}: the value as the "
                    f"flipped byte in {c['file']} spells it",
                    {"consumer": r.consumer, "partition": r.partition, "offset": r.offset,
                     "value": r.value, "t": r.t}))
            elif (r.consumer in drains and r.t > c["t"] and r.partition == c["partition"]
                  and held.get(r.offset) == r.value):
                out.append(Anomaly(
                    "corrupt-served",
                    f"the drain read {r.partition}@{r.offset} ({r.value!r}) from the batch "
                    f"[{first}, {last}] damaged in {c['file']}",
                    {"consumer": r.consumer, "partition": r.partition, "offset": r.offset,
                     "value": r.value, "t": r.t}))
    return out


def check_poll_order(h: History) -> list[Anomaly]:
    ix = h.index()
    gaps = any(p.transactional for p in h.producers.values())

    def must_return(c: str, p: int, first: int, end: int) -> list[int]:
        """Offsets in [first, end) that consumer c skipped although it must return them."""
        if not gaps:
            return list(range(first, end))
        info = h.consumers.get(c)
        level = "read_committed" if info is None or info.read_committed else "read_uncommitted"
        return [o for o in range(first, end) if level in ix.must_see(p, o)]

    out = []
    last: dict[str, dict[int, int]] = defaultdict(dict)  # consumer -> partition -> last offset
    for ev in h.events:
        kind = ev["type"]
        if kind in ASSIGNMENT_EVENTS:
            c = ev["consumer"]
            last[c] = {}
            for p, start in ev.get("positions") or []:
                if kind == "assign":
                    last[c][p] = start - 1
        elif kind == "seek":
            if ev.get("offset") is not None and ev["offset"] >= 0:
                last[ev["consumer"]][ev["partition"]] = ev["offset"] - 1
            else:
                last[ev["consumer"]].pop(ev["partition"], None)
        elif kind == "poll":
            c = ev["consumer"]
            for p, o, v in ev["records"]:
                prev = last[c].get(p)
                if prev is not None and o <= prev:
                    out.append(Anomaly(
                        "nonmonotonic-poll",
                        f"{c} read {p}@{o} ({v!r}) after {p}@{prev} without a rebalance",
                        {"consumer": c, "partition": p, "previous": prev, "offset": o,
                         "value": v, "t": ev["t"]}))
                elif prev is not None and o > prev + 1 and (
                        missed := must_return(c, p, prev + 1, o)):
                    out.append(Anomaly(
                        "skipped-poll",
                        f"{c} read {p}@{o} ({v!r}) right after {p}@{prev}: "
                        f"{o - prev - 1} offsets skipped without a rebalance"
                        + (f", {len(missed)} holding records it must return ({missed[:5]})"
                           if gaps else ""),
                        {"consumer": c, "partition": p, "previous": prev, "offset": o,
                         "value": v, "skipped": o - prev - 1, "must_return": missed[:20],
                         "t": ev["t"]}))
                last[c][p] = o
    return out


def check_producer_order(h: History) -> list[Anomaly]:
    ix = h.index()
    per: dict[tuple[str, int], list[Send]] = defaultdict(list)
    for s in ix.sends.values():
        if s.acked:
            per[(s.producer, s.ack_partition)].append(s)
    out = []
    for (producer, p), sends in sorted(per.items()):
        info = h.producers.get(producer)
        may_reorder = (info is not None and not info.idempotent and info.retries
                       and info.max_in_flight > 1)
        sends.sort(key=lambda s: s.idx)
        # The final log, and the log as it was just before each corruption of this partition.
        destroyed = {(s.producer, s.idx): ix.destroyed_by(s) for s in sends} if ix.corruptions else {}
        views = [[s for s in sends if destroyed.get((s.producer, s.idx)) is None]]
        for c in ix.corruptions:
            if c["partition"] == p:
                views.append([s for s in sends if s.t_outcome < c["t"] and (
                    (d := destroyed.get((s.producer, s.idx))) is None or d["t"] >= c["t"])])
        seen: set[tuple[int, int]] = set()
        for view in views:
            top: Send | None = None  # the earlier send with the highest offset so far
            for s in view:
                if top is not None and s.ack_offset < top.ack_offset and (top.idx, s.idx) not in seen:
                    seen.add((top.idx, s.idx))
                    allowed = may_reorder and ix.may_have_been_retried(top)
                    out.append(Anomaly(
                        "reorder-allowed" if allowed else "reorder",
                        f"{producer}: send #{s.idx} ({s.value!r}) acked at {p}@{s.ack_offset}, before "
                        f"earlier send #{top.idx} ({top.value!r}) at {p}@{top.ack_offset}",
                        {"producer": producer, "partition": p, "earlier": _send_ref(top),
                         "later": _send_ref(s)}))
                if top is None or s.ack_offset > top.ack_offset:
                    top = s
    return out


def check_commit_order(h: History) -> list[Anomaly]:
    out = []
    last: dict[tuple, tuple[int, float]] = {}
    for ev in h.events:
        if ev["type"] == "seek":
            for key in [k for k in last if k[1] == ev["consumer"] and k[4] == ev["partition"]]:
                del last[key]
        if ev["type"] != "commit" or not ev.get("ok"):
            continue
        gen, member = ev.get("generation"), ev.get("member")
        if gen is None or gen < 0 or not member:
            continue
        for p, o in ev["offsets"]:
            key = (ev["group"], ev["consumer"], member, gen, p)
            if key in last and o < last[key][0]:
                out.append(Anomaly(
                    "commit-backwards",
                    f"{ev['consumer']} (member {member}, generation {gen}) committed "
                    f"{ev['group']}/{p} = {o} after {last[key][0]}",
                    {"group": ev["group"], "consumer": ev["consumer"], "member": member,
                     "generation": gen, "partition": p, "previous": last[key][0], "offset": o,
                     "t_previous": last[key][1], "t": ev["t"]}))
            last[key] = (o, ev["t"])
    return out


@dataclass
class _Commit:
    t_invoke: float
    t_ack: float | None   # None: failed (may have been applied at any time after t_invoke)
    offset: int
    consumer: str


def _commit_floor(commits: list[_Commit], t0: float, t1: float) -> tuple[int | None, list[_Commit]]:
    """Lowest offset among the commits that could be the latest applied when an observation was
    made at an unknown moment within [t0, t1]; see the module docstring."""
    cands = [c for c in commits if c.t_invoke < t1]
    # the latest invocation among commits acknowledged before t0
    last_done = max((c.t_invoke for c in cands if c.t_ack is not None and c.t_ack < t0),
                    default=-math.inf)
    # superseded: a later commit was applied after it was acknowledged, before the observation
    possible = [c for c in cands if c.t_ack is None or not last_done > c.t_ack]
    if not possible:
        return None, []
    return min(c.offset for c in possible), possible


def check_commit_regressed(h: History) -> list[Anomaly]:
    commits: dict[tuple[str, int], list[_Commit]] = defaultdict(list)
    for ev in h.events:
        if ev["type"] == "commit":
            for p, o in ev["offsets"]:
                commits[(ev["group"], p)].append(
                    _Commit(ev["t_invoke"], ev["t"] if ev.get("ok") else None, o, ev["consumer"]))

    # observations: (group, partition, t0, t1, observed offset, how)
    observations: list[tuple[str, int, float, float, int, str]] = []
    pending: dict[str, dict[int, float]] = defaultdict(dict)  # consumer -> partition -> t_assign
    for ev in h.events:
        kind = ev["type"]
        if kind == "committed":
            for p, o in ev["offsets"]:
                observations.append((ev["group"], p, ev["t_invoke"], ev["t"], o,
                                     "committed offsets read back"))
        elif kind in ASSIGNMENT_EVENTS:
            c = ev["consumer"]
            info = h.consumers.get(c)
            pending[c] = {}
            if (kind == "assign" and info is not None and info.kind == "group"
                    and ev.get("group") and not ev.get("positions")):
                pending[c] = {p: ev["t"] for p in ev["assignment"]}
        elif kind == "seek":
            pending[ev["consumer"]].pop(ev["partition"], None)
        elif kind == "poll":
            c = ev["consumer"]
            for p, o, _ in ev["records"]:
                t_assign = pending[c].pop(p, None)
                if t_assign is not None:
                    observations.append((h.consumers[c].group, p, t_assign, ev["t"], o,
                                         f"first offset {c} read after being assigned"))
    out = []
    for group, p, t0, t1, observed, how in observations:
        floor, possible = _commit_floor(commits.get((group, p), []), t0, t1)
        if floor is not None and observed < floor:
            out.append(Anomaly(
                "commit-regressed",
                f"{group}/{p}: {how} = {observed}, but the latest commit was at least {floor}",
                {"group": group, "partition": p, "observed": observed, "floor": floor, "how": how,
                 "t0": t0, "t1": t1,
                 "candidates": [asdict(c) for c in sorted(possible, key=lambda c: c.t_invoke)][-5:]}))
    return out


def check_ownership(h: History) -> list[Anomaly]:
    owners: dict[tuple[str, int], dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for ev in h.events:
        if ev["type"] != "assign":
            continue
        gen, member = ev.get("generation"), ev.get("member")
        if gen is None or gen < 0 or not member or not ev.get("group"):
            continue
        for p in ev["assignment"]:
            owners[(ev["group"], gen)][p].add(member)
    out = []
    for (group, gen), parts in sorted(owners.items()):
        for p, members in sorted(parts.items()):
            if len(members) > 1:
                out.append(Anomaly(
                    "double-ownership",
                    f"{group} generation {gen}: partition {p} assigned to {sorted(members)}",
                    {"group": group, "generation": gen, "partition": p, "members": sorted(members)}))
    return out


def check_resets(h: History) -> list[Anomaly]:
    ix = h.index()
    out = []
    for ev in h.events:
        if ev["type"] != "seek" or ev.get("reason") != "offset-out-of-range":
            continue
        p, pos = ev["partition"], ev.get("position")
        cut = [c for c in ix.corruptions if c["partition"] == p and c["t"] < ev["t"]
               and pos is not None and pos > c["first_offset"]]
        if not cut:
            out.append(Anomaly(
                "offset-out-of-range",
                f"{ev['consumer']}: position {pos} of partition {p} out of range, but no injected "
                f"corruption cut that log below it",
                {"consumer": ev["consumer"], "partition": p, "position": pos,
                 "error": ev.get("error"), "t": ev["t"]}))
    return out


def check_disk_faults(h: History) -> list[Anomaly]:
    ix = h.index()
    out = []
    for ev in h.events:
        if ev["type"] != "disk_fault":
            continue
        plan, t_on, t_off = ev.get("plan") or {}, ev["t_start"], ev["t"]
        # One replica of three (replicated): the others may acknowledge meanwhile, and whether
        # an acknowledged write survived is what "lost" decides.
        if (plan.get("fail_syncs") or plan.get("disk_full")) and not ev.get("replicated"):
            what = "fsyncs failed" if plan.get("fail_syncs") else "the disk was full"
            for s in ix.sends.values():
                if s.acked and s.t_invoke > t_on and s.t_outcome < t_off:
                    out.append(Anomaly(
                        "acked-during-disk-fault",
                        f"{s.value!r} from {s.producer} sent {s.t_invoke - t_on:.3f} s after {what} "
                        f"(plan {plan}) and acked at {s.ack_partition}@{s.ack_offset} "
                        f"{t_off - s.t_outcome:.3f} s before it was cleared",
                        _send_ref(s) | {"plan": plan, "fault_t_start": t_on, "fault_t": t_off}))
        if ev.get("expect_resume"):
            after: dict[str, list[Send]] = defaultdict(list)
            for s in ix.sends.values():
                if s.t_invoke > t_off:
                    after[s.producer].append(s)
            for producer, sends in sorted(after.items()):
                if not any(s.acked for s in sends):
                    out.append(Anomaly(
                        "no-progress",
                        f"producer {producer}: none of its {len(sends)} sends after the disk fault "
                        f"{plan} was cleared was acked",
                        {"producer": producer, "sends": len(sends), "plan": plan, "fault_t": t_off}))
    return out


def check_probes(h: History) -> list[Anomaly]:
    return [Anomaly("probe-failed",
                    f"node {ev['node']}: {ev['what']}: expected {ev['expected']}, observed "
                    f"{ev['observed']}" + (f" ({ev['detail']})" if ev.get("detail") else ""),
                    {k: ev.get(k) for k in ("node", "what", "expected", "observed", "detail", "t")})
            for ev in h.events if ev["type"] == "probe" and ev["observed"] != ev["expected"]]


def check_drain(h: History) -> list[Anomaly]:
    ix = h.index()
    out = []
    if h.meta.get("drain_required") and not ix.drains:
        out.append(Anomaly("drain-incomplete", "the final drain never ran"))
    for d in ix.drains:
        if not d.get("complete"):
            hw = dict(map(tuple, d["high_watermarks"]))
            pos = dict(map(tuple, d["positions"]))
            short = {p: [pos.get(p, 0), w] for p, w in hw.items() if pos.get(p, 0) < w}
            out.append(Anomaly(
                "drain-incomplete",
                f"drain by {d['consumer']} stopped short: {{partition: [position, high watermark]}}"
                f" = {short}" + (f"; error: {d.get('error')}" if d.get("error") else ""),
                {"consumer": d["consumer"], "short": short, "error": d.get("error")}))
    # A read_committed drain ends at the last stable offset; after every producer stopped it must
    # be the high watermark a read_uncommitted drain reached (else a transaction was left open).
    levels = {d["consumer"]: h.consumers.get(d["consumer"]) for d in ix.drains}
    committed = [d for d in ix.drains if levels[d["consumer"]] is None
                 or levels[d["consumer"]].read_committed]
    uncommitted = [d for d in ix.drains if levels[d["consumer"]] is not None
                   and not levels[d["consumer"]].read_committed]
    for u in uncommitted:
        hw = dict(map(tuple, u["high_watermarks"]))
        for d in committed:
            lso = dict(map(tuple, d["high_watermarks"]))
            below = {p: [lso[p], w] for p, w in sorted(hw.items()) if p in lso and lso[p] < w}
            if below:
                out.append(Anomaly(
                    "drain-incomplete",
                    f"{d['consumer']} (read_committed) ended below the high watermark "
                    f"{u['consumer']} (read_uncommitted) found: {{partition: [last stable offset, "
                    f"high watermark]}} = {below}: a transaction left open",
                    {"consumer": d["consumer"], "below": below}))
    return out


def check_server(h: History) -> list[Anomaly]:
    return [Anomaly("server-failure", f"node {ev['node']}: {ev['what']}: {ev.get('detail', '')}",
                    {"node": ev["node"], "what": ev["what"], "detail": ev.get("detail", ""),
                     "t": ev["t"]})
            for ev in h.events if ev["type"] == "server"]


def check_progress(h: History) -> list[Anomaly]:
    ix = h.index()
    out = []
    sent = Counter(s.producer for s in ix.sends.values())
    acked = Counter(s.producer for s in ix.sends.values() if s.acked)
    committed = Counter(t.producer for t in ix.txns.values() if t.outcome == "committed")
    for producer in sorted(sent):
        info = h.producers.get(producer)
        if info is not None and info.transactional:
            if not committed[producer]:
                n = sum(1 for t in ix.txns.values() if t.producer == producer)
                out.append(Anomaly("no-progress",
                                   f"transactional producer {producer}: none of {n} transactions "
                                   f"committed", {"producer": producer, "transactions": n}))
            continue
        if not acked[producer]:
            out.append(Anomaly("no-progress",
                               f"producer {producer}: none of {sent[producer]} sends acked",
                               {"producer": producer, "sends": sent[producer]}))
    if sum(acked.values()):
        groups = {c.group for c in h.consumers.values() if c.kind == "group" and c.group}
        read_by = Counter(h.consumers[r.consumer].group for r in ix.reads if r.consumer in h.consumers)
        for g in sorted(groups):
            if not read_by[g]:
                out.append(Anomaly("no-progress", f"consumer group {g} read nothing",
                                   {"group": g}))
    return out


CHECKS: list[Callable[[History], list[Anomaly]]] = [
    check_well_formed,
    check_lost,
    check_aborted_reads,
    check_committed_lost,
    check_txn_atomicity,
    check_wrong_ack_offset,
    check_duplicates,
    check_phantoms,
    check_inconsistent_offsets,
    check_replicas,
    check_corrupt_served,
    check_poll_order,
    check_resets,
    check_producer_order,
    check_commit_order,
    check_commit_regressed,
    check_ownership,
    check_drain,
    check_disk_faults,
    check_server,
    check_probes,
    check_progress,
]


def stats(h: History) -> dict[str, Any]:
    ix = h.index()
    outcomes = Counter(s.outcome or "none" for s in ix.sends.values())
    txns = Counter(t.outcome for t in ix.txns.values())
    return {
        "sends": len(ix.sends),
        "acked": outcomes["acked"],
        "failed": outcomes["failed"],
        "unknown": outcomes["unknown"] + outcomes["none"],
        "records_read": len(ix.reads),
        "values_read": len({r.value for r in ix.reads}),
        "commits": sum(1 for e in h.events if e["type"] == "commit" and e.get("ok")),
        "rebalances": sum(1 for e in h.events if e["type"] == "assign" and e.get("group")),
        "unknown_generation": sum(1 for e in h.events if e["type"] in ("assign", "commit")
                                  and e.get("group") and (e.get("generation") is None
                                                          or e["generation"] < 0)),
        "faults": len(ix.fault_windows),
        "corruptions": len(ix.corruptions),
        "replicas_compared": sum(1 for e in h.events if e["type"] == "replica"),
        "probes": sum(1 for e in h.events if e["type"] == "probe"),
    } | ({"txns": len(ix.txns), "txns_committed": txns["committed"],
          "txns_aborted": txns["aborted"], "txns_unknown": len(ix.txns) - txns["committed"]
          - txns["aborted"]} if ix.txns else {})


def check(h: History) -> Report:
    anomalies: list[Anomaly] = []
    for fn in CHECKS:
        anomalies.extend(fn(h))
    order = {k: i for i, k in enumerate(KINDS)}
    anomalies.sort(key=lambda a: order.get(a.kind, math.inf))
    return Report(anomalies, stats(h))
