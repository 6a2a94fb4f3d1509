"""One consumer-group member as its own process (not a test module).

Usage: group_member.py CLIENT BOOTSTRAP TOPIC GROUP EVENTS_FILE CONF_JSON

CLIENT is "ck" (confluent-kafka) or "kp" (kafka-python).  CONF_JSON is a JSON
object of client settings merged over the defaults below (confluent names for
"ck", kafka-python keyword names for "kp"; for "kp" the key
"partition_assignment_strategy" takes a list of names: "range", "roundrobin",
"sticky", "cooperative-sticky").

The member subscribes to TOPIC in GROUP and consumes until SIGTERM, then
closes the consumer (a clean close: LeaveGroup, except for static members
under librdkafka) and exits 0.  The test may SIGKILL it instead.

Offsets are committed by hand, synchronously, after every polled batch
(auto commit is off), so a clean hand-over of a partition never re-delivers
anything.  A commit that fails (e.g. during a rebalance) is reported.

Everything observable is appended to EVENTS_FILE as one JSON object per
line, one write(2) per line (lines survive a SIGKILL of this process):

  {"ev": "started", "pid": ...}
  {"ev": "assign" | "revoke" | "lost", "parts": [...], "assignment": [...]}
      a rebalance callback: the partitions it was called with, and
      consumer.assignment() when it ran
  {"ev": "assignment", "parts": [...]}   consumer.assignment() changed
  {"ev": "msgs", "recs": [[partition, offset, value], ...]}
  {"ev": "commit", "offsets": {partition: next_offset}}
  {"ev": "commit_error", "error": "...", "offsets": {...}}
  {"ev": "error", "error": "..."}
  {"ev": "closing"} / {"ev": "closed"}

Every event also carries "t" (time.time()).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

MAX_SECONDS = 240.0  # safety net: never outlive a test by much


class Events:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def emit(self, ev: str, **fields) -> None:
        fields["ev"] = ev
        fields["t"] = time.time()
        os.write(self.fd, (json.dumps(fields) + "\n").encode())


stop = False


def on_sigterm(signum, frame):
    global stop
    stop = True


def run_confluent(bootstrap, topic, group, events: Events, conf: dict) -> None:
    import confluent_kafka as ck

    base = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "enable.partition.eof": False,
    }
    base.update(conf)
    consumer = ck.Consumer(base)

    def parts(tps):
        return sorted(tp.partition for tp in tps if tp.topic == topic)

    def current():
        return parts(consumer.assignment())

    def on_assign(c, tps):
        # confluent-kafka assigns (eager) or incrementally assigns (cooperative)
        # by itself after this callback returns; report the resulting assignment
        # from the "assignment" poll below as well.
        events.emit("assign", parts=parts(tps), assignment=current())

    def on_revoke(c, tps):
        events.emit("revoke", parts=parts(tps), assignment=current())

    def on_lost(c, tps):
        events.emit("lost", parts=parts(tps), assignment=current())

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    last_assignment = None
    deadline = time.monotonic() + MAX_SECONDS
    while not stop and time.monotonic() < deadline:
        msgs = consumer.consume(num_messages=500, timeout=0.1)
        recs = []
        for m in msgs:
            if m.error() is not None:
                events.emit("error", error=str(m.error()))
                continue
            recs.append([m.partition(), m.offset(), m.value().decode()])
        if recs:
            events.emit("msgs", recs=recs)
            nxt = {}
            for p, o, _ in recs:
                nxt[p] = max(nxt.get(p, 0), o + 1)
            try:
                consumer.commit(offsets=[ck.TopicPartition(topic, p, o) for p, o in nxt.items()],
                                asynchronous=False)
                events.emit("commit", offsets=nxt)
            except ck.KafkaException as e:
                events.emit("commit_error", error=str(e), offsets=nxt)
        now = current()
        if now != last_assignment:
            events.emit("assignment", parts=now)
            last_assignment = now
    events.emit("closing")
    consumer.close()
    events.emit("closed")


KP_ASSIGNORS = {
    "range": "kafka.coordinator.assignors.range:RangePartitionAssignor",
    "roundrobin": "kafka.coordinator.assignors.roundrobin:RoundRobinPartitionAssignor",
    "sticky": "kafka.coordinator.assignors.sticky.sticky_assignor:StickyPartitionAssignor",
    "cooperative-sticky": "kafka.coordinator.assignors.cooperative_sticky:CooperativeStickyAssignor",
}


def load(spec: str):
    import importlib

    mod, name = spec.split(":")
    return getattr(importlib.import_module(mod), name)


def run_kafka_python(bootstrap, topic, group, events: Events, conf: dict) -> None:
    import kafka.errors as Errors
    from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    base = dict(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        request_timeout_ms=30000,
    )
    conf = dict(conf)
    if "partition_assignment_strategy" in conf:
        conf["partition_assignment_strategy"] = tuple(
            load(KP_ASSIGNORS[n]) for n in conf["partition_assignment_strategy"])
    base.update(conf)
    consumer = KafkaConsumer(**base)

    def parts(tps):
        return sorted(tp.partition for tp in tps if tp.topic == topic)

    def current():
        return parts(consumer.assignment())

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            events.emit("revoke", parts=parts(revoked), assignment=current())

        def on_partitions_assigned(self, assigned):
            events.emit("assign", parts=parts(assigned), assignment=current())

        def on_partitions_lost(self, lost):
            events.emit("lost", parts=parts(lost), assignment=current())

    # Learn the topic's partitions before joining.  Otherwise the first leader
    # assigns nothing ("No partition metadata"), and the rejoin it then triggers
    # itself is lost by kafka-python 3.0.12 when a poll() times out mid-join: the
    # leader's assignment clears the trigger (assignment_snapshot) before the
    # join task finishes, so the finished join is never completed, heartbeats
    # stay disabled, and the member is evicted after the session timeout
    # (a client bug, seen against a correct coordinator).
    meta_deadline = time.monotonic() + 30
    while not consumer.partitions_for_topic(topic):
        if time.monotonic() >= meta_deadline:
            raise SystemExit(f"no metadata for topic {topic}")
        time.sleep(0.05)
    consumer.subscribe([topic], listener=Listener())
    last_assignment = None
    deadline = time.monotonic() + MAX_SECONDS
    while not stop and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=100, max_records=500)
        recs = []
        for tp, records in batches.items():
            for r in records:
                recs.append([tp.partition, r.offset, r.value.decode()])
        if recs:
            events.emit("msgs", recs=recs)
            nxt = {}
            for p, o, _ in recs:
                nxt[p] = max(nxt.get(p, 0), o + 1)
            try:
                consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
                                 for p, o in nxt.items()})
                events.emit("commit", offsets=nxt)
            except Errors.KafkaError as e:
                events.emit("commit_error", error=repr(e), offsets=nxt)
        now = current()
        if now != last_assignment:
            events.emit("assignment", parts=now)
            last_assignment = now
    events.emit("closing")
    consumer.close()
    events.emit("closed")


def main() -> int:
    client, bootstrap, topic, group, events_path, conf_json = sys.argv[1:7]
    conf = json.loads(conf_json)
    if os.environ.get("GROUP_MEMBER_DEBUG"):
        # client debug logs to stderr (the test keeps them in <name>.stderr)
        if client == "ck":
            conf.setdefault("debug", "cgrp,protocol")
        else:
            import logging

            logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                                format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, on_sigterm)
    events = Events(events_path)
    events.emit("started", pid=os.getpid())
    if client == "ck":
        run_confluent(bootstrap, topic, group, events, conf)
    elif client == "kp":
        run_kafka_python(bootstrap, topic, group, events, conf)
    else:
        raise SystemExit(f"unknown client {client!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
