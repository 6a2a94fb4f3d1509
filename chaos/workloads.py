"""Workload processes (producers, group consumers) and the in-process final drain.

Each producer and consumer runs as its own process:

    python -m chaos.workloads producer|consumer CONFIG_JSON

and appends the events of chaos/history.py to its own JSON-lines file (one write(2) per line, so a
killed process leaves whole lines), with "t" = time.monotonic().  It runs until SIGTERM (or
config["max_s"] as a safety net).  The run merges the files into one History.

Producers (config "client" = "confluent-kafka" or "kafka-python") send unique values
"<run tag>/<producer>/<idx>" to partition idx % partitions at a steady rate.  Every send is recorded
as invoked before the client call; its outcome is the delivery report (ack with partition and
offset, or fail with the error; a send call that raises is a fail).  On SIGTERM a producer stops
sending, flushes for config["flush_s"], and records every send without a delivery report by then
as unknown; reports arriving later are ignored.  The first line is a "producer_info" event with
the client's effective settings (idempotence, acks, retries, max in flight).  confluent-kafka
producers also record "retry" windows from librdkafka statistics (txretries / req_timeouts
growing between two statistics callbacks), every produce request that failed (librdkafka's "msg"
debug log: "MessageSet ... encountered error", e.g. NOT_LEADER_OR_FOLLOWER from a partition's former
leader; the client then retries those messages, which its statistics do not count) as "retry" too,
and transport errors as "client_error".  A fatal
librdkafka error (an idempotent producer whose sequence numbers a log cut desynchronised) is
recorded as a client_error with fatal=true, and the producer is replaced by a new instance, as an
application would do; what the old instance still held fails (purged) or becomes unknown.

The transactional producer (config "transactional_id"; run_txn_producer) sends the same kind of
values in transactions of a few messages over the partitions, commits or aborts each (a seeded
draw), and records each transaction's sends and outcome as a "txn" event; its delivery reports are
recorded as for the others, but only the transaction's outcome says whether they are visible.

Group consumers (confluent-kafka, read_committed) subscribe, commit synchronously the offsets of
every polled batch (auto commit off; with config["reset"] = "seek" offsets are never reset
silently: see reset_to_log_start; with config["commit_position"], also their position() when a poll
returned nothing, which steps over transaction markers), and record assign / revoke / lost
callbacks with the member id and generation read from consumer_group_metadata(): librdkafka does
not expose the generation otherwise, but its serialised group metadata ("CGMDv2:" + native int32
generation + group id + member id) holds it. The generation is read in the callback; librdkafka
does not start another join before the application has handled an assignment, so it is the
generation of that assignment. For commits it is read just before the commit call, so a rebalance
completing between that read and the commit could attribute the commit to the previous generation.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import struct
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

stop = threading.Event()


def _on_sigterm(signum, frame):
    stop.set()


class EventWriter:
    def __init__(self, path: str, **common):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.common = common
        self.lock = threading.Lock()

    def emit(self, type: str, t: float | None = None, **fields) -> None:
        ev = {"type": type, "t": time.monotonic() if t is None else t}
        ev.update(self.common)
        ev.update(fields)
        line = (json.dumps(ev, separators=(",", ":")) + "\n").encode()
        with self.lock:
            os.write(self.fd, line)


def parse_group_metadata(cgmd: bytes | None) -> tuple[int | None, str | None]:
    """(generation, member id) from librdkafka's serialised consumer group metadata."""
    if not cgmd or not cgmd.startswith(b"CGMDv2:") or len(cgmd) < 11:
        return None, None
    (generation,) = struct.unpack("=i", cgmd[7:11])
    _group, _, rest = cgmd[11:].partition(b"\0")
    member, _, _ = rest.partition(b"\0")
    return generation, member.decode("utf-8", "replace") or None


class Pacer:
    """Yields send slots at `rate` per second; wait(fn) spends the time until the next slot in fn
    (the client's poll), so delivery reports are served while pacing."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    def wait(self, poll) -> None:
        while True:
            delay = self.next - time.monotonic()
            if delay <= 0:
                break
            poll(min(delay, 0.05))
        self.next = max(self.next + self.interval, time.monotonic() - 1.0)


# ---------------------------------------------------------------------------------------------
# producers
# ---------------------------------------------------------------------------------------------

def run_confluent_producer(cfg: dict[str, Any], ev: EventWriter) -> None:
    import confluent_kafka as ck

    name = cfg["name"]
    state = {"cutoff": False, "retries": 0, "t_stats": time.monotonic()}
    pending: set[int] = set()

    def on_error(err):
        ev.emit("client_error", client=name, error=str(err))

    def on_stats(js):
        try:
            data = json.loads(js)
            n = sum(b.get("txretries", 0) + b.get("req_timeouts", 0)
                    for b in data.get("brokers", {}).values())
        except (ValueError, AttributeError):
            return
        now = time.monotonic()
        if n > state["retries"]:
            ev.emit("retry", t=now, producer=name, t_start=state["t_stats"], count=n - state["retries"])
        state["retries"], state["t_stats"] = n, now

    class ProduceErrors(logging.Handler):
        """librdkafka's "msg" debug lines: a MessageSet that "encountered error" (e.g. NOT_LEADER
        from a partition's former leader) is retried or failed by the client.  librdkafka's
        statistics do not count such message-level retries, so each is recorded as a retry.
        Its other debug lines are dropped; warnings and errors go to stderr as before."""

        def emit(self, record):
            msg = record.getMessage()
            if record.levelno > logging.DEBUG:
                sys.stderr.write(f"{record.levelname}|{time.time():.3f}|{msg}\n")
            elif "encountered error" in msg:
                now = time.monotonic()
                ev.emit("retry", t=now, producer=name, t_start=now, count=0,
                        error=msg[msg.find("]: ") + 3:][:200])

    rdk_log = logging.getLogger(f"chaos.librdkafka.{name}")
    rdk_log.propagate = False
    rdk_log.setLevel(logging.DEBUG)
    rdk_log.addHandler(ProduceErrors(logging.DEBUG))
    conf = {
        "bootstrap.servers": cfg["bootstrap"],
        "client.id": name,
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        "statistics.interval.ms": 500,
        "debug": "msg",
        "logger": rdk_log,
        "error_cb": on_error,
        "stats_cb": on_stats,
    }
    conf.update(cfg.get("conf", {}))
    producer = ck.Producer(conf)
    retired = []   # producers replaced after a fatal error (kept alive, never polled again)
    idempotent = str(conf.get("enable.idempotence", False)).lower() == "true"
    ev.emit("producer_info", producer=name, client="confluent-kafka", idempotent=idempotent,
            acks=str(conf.get("acks", "all")).replace("-1", "all"),
            retries=idempotent or int(conf.get("retries", 2147483647)) > 0,
            max_in_flight=int(conf.get("max.in.flight.requests.per.connection",
                                       5 if idempotent else 1000000)),
            config={k: v for k, v in conf.items() if isinstance(v, (str, int, float, bool))})

    def report(idx, incarnation):
        def cb(err, msg):
            if state["cutoff"] or incarnation != len(retired):
                return
            pending.discard(idx)
            if err is not None:
                ev.emit("fail", producer=name, idx=idx, error=str(err))
            else:
                ev.emit("ack", producer=name, idx=idx, partition=msg.partition(), offset=msg.offset())
        return cb

    def poll(timeout):
        """producer.poll; a fatal error (e.g. an idempotent producer's sequence desynchronised by
        a log cut) is noted: the producer is replaced at the next send."""
        try:
            producer.poll(timeout)
        except ck.KafkaException as e:
            if not e.args[0].fatal():
                raise
            state["fatal"] = str(e)

    def replace_producer():
        """After a fatal error, as an application would: fail what the old instance still holds
        (purged: fail; no report within 5 s: unknown), continue with a new instance."""
        nonlocal producer
        ev.emit("client_error", client=name, error=state.pop("fatal"), fatal=True)
        try:
            producer.purge()
            producer.flush(5)
        except ck.KafkaException:
            pass
        retired.append(producer)
        state["retries"], state["t_stats"] = 0, time.monotonic()   # the new instance's counters
        for i in sorted(pending):
            ev.emit("unknown", producer=name, idx=i, reason="producer replaced after a fatal error")
        pending.clear()
        producer = ck.Producer(conf)

    topic, parts, tag = cfg["topic"], cfg["partitions"], cfg["tag"]
    pacer = Pacer(cfg["rate"])
    deadline = time.monotonic() + cfg.get("max_s", 600)
    idx = 0
    while not stop.is_set() and time.monotonic() < deadline:
        pacer.wait(poll)
        if state.get("fatal"):
            replace_producer()
        value = f"{tag}/{name}/{idx}"
        p = idx % parts
        ev.emit("send", producer=name, idx=idx, value=value, partition=p)
        pending.add(idx)
        while True:
            try:
                producer.produce(topic, value=value.encode(), partition=p,
                                 on_delivery=report(idx, len(retired)))
                break
            except BufferError:
                if stop.is_set():
                    pending.discard(idx)
                    ev.emit("fail", producer=name, idx=idx, error="local queue full at stop")
                    break
                poll(0.05)
            except ck.KafkaException as e:
                pending.discard(idx)
                ev.emit("fail", producer=name, idx=idx, error=f"produce() raised {e}")
                if e.args[0].fatal():
                    state["fatal"] = str(e)
                break
        poll(0)
        idx += 1
    try:
        remaining = producer.flush(cfg.get("flush_s", 15))
    except ck.KafkaException as e:
        remaining = f"flush raised {e}"
    state["cutoff"] = True
    for i in sorted(pending):
        ev.emit("unknown", producer=name, idx=i,
                reason=f"no delivery report {cfg.get('flush_s', 15)} s into the final flush")
    ev.emit("note", text=f"{name} closed: {idx} sends, {len(pending)} unknown (queue {remaining}), "
                         f"{len(retired)} instance(s) replaced after fatal errors")


def run_txn_producer(cfg: dict[str, Any], ev: EventWriter) -> None:
    """A confluent-kafka transactional producer (transactional.id, so idempotent; acks=all).

    Each transaction: cfg["txn_size"] = [lo, hi] messages (drawn), consecutive idx, so spread
    over the partitions (idx % partitions), sent back to back; then committed, or aborted with
    probability cfg["abort_ratio"] (the seeded draw: random.Random(cfg["seed"])); transactions
    start at cfg["txn_rate"] per second.  Every send is recorded with its transaction's sequence
    number (send ... txn), its delivery report as ack / fail as for the other producers (an ack
    says written in the transaction, not visible), and the transaction's end as a "txn" event:
    committed (commit_transaction returned), aborted (abort_transaction returned) or unknown.
    Errors are handled as confluent-kafka documents: txn_requires_abort() -> abort_transaction;
    retriable() -> call again (within cfg["end_s"], after SIGTERM within flush_s); anything else,
    or giving up, is fatal: the producer is re-created with the same transactional.id, whose
    init_transactions fences the old instance and aborts (or, if its commit was already decided,
    completes) the open transaction, so the outcome is unknown.  A produce() that raises fails
    that send and makes the transaction abort (commit_requested stays false).  Before an abort
    the producer flushes, so that the aborted records are written (in the log, hidden) rather
    than purged from its queue."""
    import random

    import confluent_kafka as ck

    name = cfg["name"]
    rng = random.Random(cfg["seed"])
    abort_ratio = float(cfg.get("abort_ratio", 0.25))
    size_lo, size_hi = cfg.get("txn_size", [2, 6])
    op_timeout = float(cfg.get("op_timeout_s", 10))
    end_s = float(cfg.get("end_s", 30))
    flush_s = float(cfg.get("flush_s", 15))
    state: dict[str, Any] = {"cutoff": False, "t_stop": None}
    pending: set[int] = set()

    def on_error(err):
        ev.emit("client_error", client=name, error=str(err))

    conf = {
        "bootstrap.servers": cfg["bootstrap"],
        "client.id": name,
        "transactional.id": cfg["transactional_id"],
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        "transaction.timeout.ms": 60000,
        "error_cb": on_error,
    }
    conf.update(cfg.get("conf", {}))
    retired: list = []   # instances replaced (kept alive, never polled again)
    ev.emit("producer_info", producer=name, client="confluent-kafka", idempotent=True,
            transactional=True, acks="all", retries=True,
            max_in_flight=int(conf.get("max.in.flight.requests.per.connection", 5)),
            config={k: v for k, v in conf.items() if isinstance(v, (str, int, float, bool))})

    def report(idx, incarnation):
        def cb(err, msg):
            if state["cutoff"] or incarnation != len(retired):
                return
            pending.discard(idx)
            if err is not None:
                ev.emit("fail", producer=name, idx=idx, error=str(err))
            else:
                ev.emit("ack", producer=name, idx=idx, partition=msg.partition(), offset=msg.offset())
        return cb

    def deadline_for(budget: float) -> float:
        """Now + budget, or, once SIGTERM came, no later than flush_s after it."""
        now = time.monotonic()
        if stop.is_set():
            if state["t_stop"] is None:
                state["t_stop"] = now
            return min(now + budget, state["t_stop"] + flush_s)
        return now + budget

    def poll(timeout):
        try:
            producer.poll(timeout)
        except ck.KafkaException:
            pass   # a fatal error: the next transactional call raises it and replaces the producer

    def retry_pause():
        time.sleep(0.1)   # a retriable error may come back at once (no coordinator yet)

    def init(p, deadline: float) -> str | None:
        """init_transactions, retried while retriable; None on success, else the error."""
        while True:
            try:
                p.init_transactions(max(0.5, min(op_timeout, deadline - time.monotonic())))
                return None
            except ck.KafkaException as e:
                err = e.args[0]
                if not err.retriable() or time.monotonic() >= deadline:
                    return str(err)
                retry_pause()

    def replace(reason: str) -> bool:
        """Re-create the producer with the same transactional.id (fencing the old instance);
        what the old one still held becomes unknown.  False if no new instance got initialised
        in time."""
        nonlocal producer
        ev.emit("client_error", client=name, error=reason, fatal=True)
        try:
            producer.purge()
        except (ck.KafkaException, RuntimeError):
            pass
        retired.append(producer)
        for i in sorted(pending):
            ev.emit("unknown", producer=name, idx=i, reason=f"producer re-created: {reason}"[:300])
        pending.clear()
        deadline = deadline_for(60)
        while True:
            producer = ck.Producer(conf)
            err = init(producer, deadline)
            if err is None:
                ev.emit("note", text=f"{name}: re-created (instance {len(retired) + 1})")
                return True
            ev.emit("client_error", client=name, error=f"init_transactions: {err}")
            if time.monotonic() >= deadline:
                return False
            retired.append(producer)

    def end(commit: bool) -> tuple[str, bool, str | None]:
        """Commit or abort the open transaction: (outcome, commit_requested, error)."""
        errors: list[str] = []
        requested = False
        deadline = deadline_for(end_s)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                errors.append(f"gave up after {end_s:.0f} s")
                break
            try:
                if commit:
                    requested = True
                    producer.commit_transaction(min(op_timeout, remaining))
                    return "committed", True, "; ".join(errors) or None
                producer.abort_transaction(min(op_timeout, remaining))
                return "aborted", requested, "; ".join(errors) or None
            except ck.KafkaException as e:
                err = e.args[0]
                errors.append(f"{'commit' if commit else 'abort'}_transaction: {err}")
                if err.fatal():
                    break
                if commit and err.txn_requires_abort():
                    commit = False
                    continue
                if err.retriable():
                    retry_pause()
                    continue
                break   # any other error is fatal (confluent-kafka's documented rule)
        error = "; ".join(errors)
        replace(error[:300])
        return "unknown", requested, error

    topic, parts, tag = cfg["topic"], cfg["partitions"], cfg["tag"]
    producer = ck.Producer(conf)
    err = init(producer, deadline_for(60))
    if err is not None and not replace(f"init_transactions: {err}"):
        ev.emit("note", text=f"{name}: no transactional producer could be initialised")
        return
    pacer = Pacer(cfg["txn_rate"])
    deadline = time.monotonic() + cfg.get("max_s", 600)
    idx = n = 0
    counts: Counter = Counter()
    while not stop.is_set() and time.monotonic() < deadline:
        pacer.wait(poll)
        size = rng.randint(size_lo, size_hi)
        decision = "abort" if rng.random() < abort_ratio else "commit"
        try:
            producer.begin_transaction()
        except ck.KafkaException as e:
            # The instance is unusable (a fatal error surfaced): no transaction began.
            replace(f"begin_transaction: {e.args[0]}")
            continue
        t_start = time.monotonic()
        idxs: list[int] = []
        produce_failed = False
        for _ in range(size):
            value = f"{tag}/{name}/{idx}"
            p = idx % parts
            ev.emit("send", producer=name, idx=idx, value=value, partition=p, txn=n)
            idxs.append(idx)
            pending.add(idx)
            try:
                producer.produce(topic, value=value.encode(), partition=p,
                                 on_delivery=report(idx, len(retired)))
            except (BufferError, ck.KafkaException) as e:
                pending.discard(idx)
                ev.emit("fail", producer=name, idx=idx, error=f"produce() raised {e!r}")
                produce_failed = True
            idx += 1
            if produce_failed:
                break
        if decision == "abort" and not produce_failed:
            # Deliver first, so that the aborted records are in the log (hidden, not absent):
            # abort_transaction alone purges what is still queued.
            try:
                producer.flush(min(op_timeout, max(0.5, deadline_for(end_s) - time.monotonic())))
            except ck.KafkaException:
                pass   # abort_transaction reports what matters
        outcome, requested, error = end(decision == "commit" and not produce_failed)
        ev.emit("txn", producer=name, txn=n, t_start=t_start, idxs=idxs, decision=decision,
                commit_requested=requested, outcome=outcome, error=error)
        counts[outcome] += 1
        n += 1
        poll(0)
    try:
        producer.flush(5)
    except ck.KafkaException:
        pass
    state["cutoff"] = True
    for i in sorted(pending):
        ev.emit("unknown", producer=name, idx=i, reason="no delivery report after its transaction")
    ev.emit("note", text=f"{name} closed: {n} transactions ({dict(counts)}), {idx} sends, "
                         f"{len(pending)} unknown, {len(retired)} instance(s) replaced")


def run_kafka_python_producer(cfg: dict[str, Any], ev: EventWriter) -> None:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    name = cfg["name"]
    lock = threading.Lock()
    pending: set[int] = set()
    state = {"cutoff": False}
    conf = dict(bootstrap_servers=cfg["bootstrap"], client_id=name, linger_ms=5, max_block_ms=5000)
    conf.update(cfg.get("conf", {}))
    producer = KafkaProducer(**conf)
    c = producer.config
    ev.emit("producer_info", producer=name, client="kafka-python",
            idempotent=bool(c["enable_idempotence"]),
            acks="all" if c["acks"] in (-1, "all") else str(c["acks"]),
            retries=bool(c["enable_idempotence"]) or (c["retries"] or 0) > 0,
            max_in_flight=int(c["max_in_flight_requests_per_connection"]),
            config={k: (v if isinstance(v, (str, int, float, bool)) or v is None else repr(v))
                    for k, v in sorted(conf.items())})

    def ok(idx):
        def cb(md):
            with lock:
                if state["cutoff"]:
                    return
                pending.discard(idx)
                ev.emit("ack", producer=name, idx=idx, partition=md.partition, offset=md.offset)
        return cb

    def err(idx):
        def cb(e):
            with lock:
                if state["cutoff"]:
                    return
                pending.discard(idx)
                ev.emit("fail", producer=name, idx=idx, error=repr(e))
        return cb

    topic, parts, tag = cfg["topic"], cfg["partitions"], cfg["tag"]
    pacer = Pacer(cfg["rate"])
    deadline = time.monotonic() + cfg.get("max_s", 600)
    idx = 0
    while not stop.is_set() and time.monotonic() < deadline:
        pacer.wait(time.sleep)
        value = f"{tag}/{name}/{idx}"
        p = idx % parts
        with lock:
            pending.add(idx)
        ev.emit("send", producer=name, idx=idx, value=value, partition=p)
        try:
            fut = producer.send(topic, value=value.encode(), partition=p)
        except KafkaError as e:
            with lock:
                pending.discard(idx)
                ev.emit("fail", producer=name, idx=idx, error=f"send() raised {e!r}")
        else:
            fut.add_callback(ok(idx)).add_errback(err(idx))
        idx += 1
    flush_s = cfg.get("flush_s", 15)
    try:
        producer.flush(timeout=flush_s)
    except KafkaError:
        pass
    with lock:
        state["cutoff"] = True
        unknown = sorted(pending)
    for i in unknown:
        ev.emit("unknown", producer=name, idx=i, reason=f"no outcome {flush_s} s into the final flush")
    ev.emit("note", text=f"{name} closed: {idx} sends, {len(unknown)} unknown")
    try:
        producer.close(timeout=1)
    except Exception:  # noqa: BLE001 - closing with messages in flight may raise; outcomes are final
        pass


# ---------------------------------------------------------------------------------------------
# group consumer
# ---------------------------------------------------------------------------------------------

def run_group_consumer(cfg: dict[str, Any], ev: EventWriter) -> None:
    import confluent_kafka as ck

    name, topic, group = cfg["name"], cfg["topic"], cfg["group"]

    def on_error(err):
        ev.emit("client_error", client=name, error=str(err))

    conf = {
        "bootstrap.servers": cfg["bootstrap"],
        "group.id": group,
        "client.id": name,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "enable.partition.eof": False,
        "isolation.level": cfg.get("isolation", "read_committed"),
        "error_cb": on_error,
    }
    # reset = "seek": no automatic offset reset (auto.offset.reset=error); a partition without a
    # committed offset, or whose position is out of range (a log cut by an injected corruption),
    # is moved to its log start offset explicitly and recorded as a seek event with the reason
    # and the position it had, so that the checker sees every rewind.
    explicit_reset = cfg.get("reset") == "seek"
    if explicit_reset:
        conf["auto.offset.reset"] = "error"
    conf.update(cfg.get("conf", {}))
    consumer = ck.Consumer(conf)
    # The eager protocol (librdkafka's default range,roundrobin) hands out whole assignments;
    # cooperative-sticky hands out increments.
    cooperative = "cooperative" in str(conf.get("partition.assignment.strategy", ""))

    def parts(tps):
        return sorted(tp.partition for tp in tps if tp.topic == topic)

    def gm():
        try:
            return parse_group_metadata(consumer.consumer_group_metadata())
        except Exception:  # noqa: BLE001 - e.g. not yet joined
            return None, None

    def start_offsets(c, tps):
        """With explicit resets: partitions without a committed offset start at the log start
        (OFFSET_BEGINNING) instead of raising a reset error; the others at their committed
        offset, looked up by librdkafka as usual (OFFSET_INVALID)."""
        if not explicit_reset or not tps:
            return tps
        try:
            committed = c.committed(tps, timeout=10)
        except ck.KafkaException:
            return tps   # unknown: a missing offset then takes the reset error path
        if any(tp.error is not None for tp in committed):
            return tps
        return [ck.TopicPartition(tp.topic, tp.partition,
                                  ck.OFFSET_INVALID if tp.offset >= 0 else ck.OFFSET_BEGINNING)
                for tp in committed]

    def callback(kind):
        def cb(c, tps):
            gen, member = gm()
            before = set(parts(c.assignment()))
            eager = not cooperative
            if kind == "assign":
                tps = start_offsets(c, tps)
            if kind == "assign" and eager:
                c.assign(tps)
                after = set(parts(tps))
            elif kind == "assign":
                c.incremental_assign(tps)
                after = before | set(parts(tps))
            elif eager:
                c.unassign()
                after = set()
            else:
                c.incremental_unassign(tps)
                after = before - set(parts(tps))
            ev.emit(kind, consumer=name, group=group, member=member, generation=gen,
                    partitions=parts(tps), assignment=sorted(after))
        return cb

    committed: dict[int, int] = {}   # what this member last got acknowledged, per partition

    def commit_read(recs):
        """Commit synchronously the offsets after recs (recorded as commit events)."""
        nxt: dict[int, int] = {}
        for p, o, _ in recs:
            nxt[p] = max(nxt.get(p, 0), o + 1)
        commit_offsets(nxt)

    def commit_positions():
        """With transactions in the topic, the offset after the last record read is not the end:
        a transaction marker (or an aborted transaction and its marker) follows, which a consumer
        steps over without returning it.  librdkafka's position() does step over them, so when a
        poll returned nothing, positions beyond this member's last commit are committed (what
        Kafka recommends for read_committed consumers), else the group never reaches the high
        watermark."""
        try:
            pos = consumer.position(consumer.assignment())
        except ck.KafkaException:
            return
        nxt = {tp.partition: tp.offset for tp in pos if tp.topic == topic and tp.offset >= 0
               and tp.offset > committed.get(tp.partition, -1)}
        if nxt:
            commit_offsets(nxt)

    def commit_offsets(nxt: dict[int, int]):
        gen, member = gm()
        t_invoke = time.monotonic()
        common = dict(consumer=name, group=group, member=member, generation=gen, t_invoke=t_invoke)
        try:
            result = consumer.commit(offsets=[ck.TopicPartition(topic, p, o) for p, o in nxt.items()],
                                     asynchronous=False)
        except ck.KafkaException as e:
            ev.emit("commit", offsets=sorted(nxt.items()), ok=False, error=str(e), **common)
            return
        failed = {tp.partition: str(tp.error) for tp in result or [] if tp.error is not None}
        good = sorted((p, o) for p, o in nxt.items() if p not in failed)
        committed.update(good)
        if good:
            ev.emit("commit", offsets=good, ok=True, error=None, **common)
        if failed:
            ev.emit("commit", offsets=sorted((p, nxt[p]) for p in failed), ok=False,
                    error="; ".join(f"{p}: {e}" for p, e in sorted(failed.items())), **common)

    commit_position = bool(cfg.get("commit_position"))
    consumer.subscribe([topic], on_assign=callback("assign"), on_revoke=callback("revoke"),
                       on_lost=callback("lost"))
    deadline = time.monotonic() + cfg.get("max_s", 600)
    while not stop.is_set() and time.monotonic() < deadline:
        msgs = consumer.consume(num_messages=500, timeout=0.2)
        recs = []
        resets: list[tuple[int, str]] = []
        for m in msgs:
            if m.error() is not None:
                if explicit_reset and m.error().code() == ck.KafkaError._AUTO_OFFSET_RESET:
                    resets.append((m.partition(), str(m.error())))
                    continue
                ev.emit("client_error", client=name, error=str(m.error()))
                continue
            recs.append([m.partition(), m.offset(), m.value().decode()])
        if recs:
            ev.emit("poll", consumer=name, records=recs)
            commit_read(recs)
        elif commit_position and not msgs:
            commit_positions()
        # After the commit of what was read: a reset is a seek, later than both.
        for partition, error in resets:
            reset_to_log_start(consumer, topic, partition, error, name, ev)
    ev.emit("note", text=f"{name} closing")
    consumer.close()
    ev.emit("note", text=f"{name} closed")


def reset_to_log_start(consumer, topic: str, partition: int, error: str, name: str,
                       ev: EventWriter) -> None:
    """Move one partition of a group consumer to its log start offset after an automatic offset
    reset error.  librdkafka refuses seek() on such a partition, so the whole assignment is
    assigned again, the other partitions at their current positions (which does not move them).
    Records a seek event: partition, offset (the new position), reason, position (the one that
    failed, -1001 = none)."""
    import confluent_kafka as ck

    low = None
    for _ in range(50):
        try:
            low, _high = consumer.get_watermark_offsets(ck.TopicPartition(topic, partition),
                                                        timeout=5, cached=False)
            break
        except ck.KafkaException:
            if stop.is_set():
                return
            time.sleep(0.2)
    if low is None:
        ev.emit("client_error", client=name, error=f"{error}; no log start offset for {partition}")
        return
    current = consumer.assignment()
    positions = {tp.partition: tp.offset for tp in consumer.position(current) if tp.topic == topic}
    if partition not in positions:   # rebalanced away meanwhile: nothing to reset
        ev.emit("note", text=f"{name}: {error} for partition {partition}, no longer assigned")
        return
    failed_at = positions[partition]
    positions[partition] = low
    ev.emit("seek", consumer=name, partition=partition, offset=low,
            reason="no-committed-offset" if "no previously committed offset" in error
            else "offset-out-of-range" if "out of range" in error.lower() else "reset",
            position=failed_at, error=error)
    consumer.assign([ck.TopicPartition(topic, q, o) for q, o in sorted(positions.items())])


# ---------------------------------------------------------------------------------------------
# in-process helpers for the run: final drain, committed offsets, catch-up
# ---------------------------------------------------------------------------------------------

def high_watermarks(consumer, topic: str, partitions: int, timeout: float,
                    log: logging.Logger | None = None) -> dict[int, int]:
    """The end offsets of every partition (ListOffsets latest, the consumer's isolation level),
    retried until timeout.

    A failure refreshes the topic's metadata before the next try: librdkafka's
    get_watermark_offsets takes the partition leader from its metadata cache and, when the
    cached leader is -1 (a Metadata answer of LEADER_NOT_AVAILABLE, legitimately given while a
    leadership moves, e.g. a preferred-leader election just after a restart), fails at once
    with _UNKNOWN_PARTITION without refreshing it, for as long as the entry lives (minutes)."""
    import confluent_kafka as ck

    deadline = time.monotonic() + timeout
    while True:
        try:
            return {p: consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=5,
                                                      cached=False)[1]
                    for p in range(partitions)}
        except ck.KafkaException as e:
            if log is not None:
                consumer.poll(0)   # serves librdkafka's queued log lines (no assignment yet)
                log.warning("get_watermark_offsets(%s): %s", topic, e)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            try:
                consumer.list_topics(topic, timeout=5)   # updates the metadata cache
            except ck.KafkaException:
                pass


def client_log(name: str, path: Path | None) -> logging.Logger | None:
    """A logger writing a client's librdkafka log (and the harness's notes on it) to path."""
    if path is None:
        return None
    log = logging.getLogger(f"chaos.client.{name}.{id(path)}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(created).3f %(levelname)s %(message)s"))
    log.addHandler(handler)
    return log


def committed_offsets(bootstrap: str, topic: str, partitions: int, group: str, emit,
                      timeout: float = 20.0) -> dict[int, int] | None:
    """Read the group's committed offsets (OffsetFetch) and record a "committed" event."""
    import confluent_kafka as ck

    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False})
    try:
        deadline = time.monotonic() + timeout
        while True:
            t0 = time.monotonic()
            try:
                tps = c.committed([ck.TopicPartition(topic, p) for p in range(partitions)], timeout=5)
            except ck.KafkaException:
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.2)
                continue
            if any(tp.error is not None for tp in tps):
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.2)
                continue
            offsets = {tp.partition: (tp.offset if tp.offset >= 0 else -1) for tp in tps}
            emit("committed", t=time.monotonic(), group=group, t_invoke=t0,
                 offsets=sorted(offsets.items()))
            return offsets
    finally:
        c.close()


def wait_caught_up(bootstrap: str, topic: str, partitions: int, group: str, timeout: float) -> bool:
    """Wait until the group's committed offsets reach the high watermark of every partition."""
    import confluent_kafka as ck

    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False})
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                hw = high_watermarks(c, topic, partitions, 5)
                tps = c.committed([ck.TopicPartition(topic, p) for p in range(partitions)], timeout=5)
                if all(tp.offset >= hw[tp.partition] for tp in tps):
                    return True
            except ck.KafkaException:
                pass
            time.sleep(0.3)
        return False
    finally:
        c.close()


def drain(bootstrap: str, topic: str, partitions: int, name: str, emit, timeout: float,
          isolation: str = "read_committed", log_path: Path | None = None) -> bool:
    """Read every partition from offset 0 up to its end with manual assignment, recording
    assign / poll / drain events as consumer `name`.

    The end is what ListOffsets(latest) answers for the isolation level: the high watermark, or
    for read_committed the last stable offset (the same once no transaction is open).  A
    partition is done once its position reaches the end: the offset after the last record read,
    or the offset a partition-EOF event reports, which covers a log ending in records the
    consumer steps over without returning them (transaction markers; for read_committed, aborted
    transactions).  With log_path, librdkafka's metadata debug log goes there."""
    import confluent_kafka as ck

    log = client_log(name, log_path)
    conf = {"bootstrap.servers": bootstrap, "group.id": f"{name}-unused",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": True,
            "isolation.level": isolation}
    if log is not None:
        conf.update({"debug": "metadata,topic", "logger": log})
    c = ck.Consumer(conf)
    hw: dict[int, int] = {}
    pos = {p: 0 for p in range(partitions)}
    error = None
    try:
        deadline = time.monotonic() + timeout
        hw = high_watermarks(c, topic, partitions, timeout / 2, log)
        emit("assign", consumer=name, group=None, member=None, generation=None,
             partitions=list(range(partitions)), assignment=list(range(partitions)),
             positions=[[p, 0] for p in range(partitions)])
        c.assign([ck.TopicPartition(topic, p, 0) for p in range(partitions)])
        while any(pos[p] < hw[p] for p in range(partitions)):
            if time.monotonic() > deadline:
                error = f"timed out after {timeout:.0f} s"
                break
            recs = []
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == ck.KafkaError._PARTITION_EOF:
                        pos[m.partition()] = max(pos[m.partition()], m.offset())
                        continue
                    emit("client_error", client=name, error=str(m.error()))
                    continue
                recs.append([m.partition(), m.offset(), m.value().decode()])
                pos[m.partition()] = max(pos[m.partition()], m.offset() + 1)
            if recs:
                emit("poll", consumer=name, records=recs)
    except ck.KafkaException as e:
        error = str(e)
    finally:
        c.close()
        for handler in list(log.handlers) if log is not None else []:
            handler.close()
            log.removeHandler(handler)
    complete = error is None and all(pos[p] >= hw.get(p, 0) for p in range(partitions)) and bool(hw)
    emit("drain", consumer=name, high_watermarks=sorted(hw.items()), positions=sorted(pos.items()),
         complete=complete, error=error, isolation=isolation)
    return complete


def main(argv: list[str]) -> int:
    role, cfg_json = argv[1], argv[2]
    cfg = json.loads(cfg_json)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # A workload that does not stop in time is asked for its stacks (Procs.stop) before the kill.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    ev = EventWriter(cfg["events"])
    if role == "producer":
        if cfg["client"] == "confluent-kafka" and cfg.get("transactional_id"):
            run_txn_producer(cfg, ev)
        elif cfg["client"] == "confluent-kafka":
            run_confluent_producer(cfg, ev)
        elif cfg["client"] == "kafka-python":
            run_kafka_python_producer(cfg, ev)
        else:
            raise SystemExit(f"unknown client {cfg['client']!r}")
    elif role == "consumer":
        run_group_consumer(cfg, ev)
    else:
        raise SystemExit(f"unknown role {role!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
