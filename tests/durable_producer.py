"""Producer process for test_crash_durability.py (not a test module).

Usage: durable_producer.py BOOTSTRAP TOPIC PARTITIONS TAG ACK_FILE

Produces values "TAG-<seq>" with seq = 0, 1, 2, ... to partition seq % PARTITIONS
with acks=all, retries disabled and idempotence off, and appends one line
"partition offset value" to ACK_FILE for every successful delivery report, as
soon as it arrives (one write(2) per line, so lines survive a SIGKILL of this
process).  Failed deliveries go to stderr.

The test SIGKILLs this process; as a safety net it also stops by itself after
MAX_MESSAGES messages or MAX_SECONDS seconds.
"""

from __future__ import annotations

import os
import sys
import time

import confluent_kafka as ck

MAX_MESSAGES = 500_000
MAX_SECONDS = 180.0


def main() -> int:
    bootstrap, topic, partitions, tag, ack_path = sys.argv[1:6]
    partitions = int(partitions)
    fd = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    failures = 0

    def on_delivery(err, msg):
        nonlocal failures
        if err is None:
            os.write(fd, f"{msg.partition()} {msg.offset()} {msg.value().decode()}\n".encode())
        else:
            failures += 1
            if failures <= 5:
                print(f"delivery failed: {err}", file=sys.stderr, flush=True)

    producer = ck.Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        # No retries: a message is either acked once or not at all, and a retry can
        # never reorder or duplicate anything behind the test's back.
        "retries": 0,
        "linger.ms": 2,
        "message.timeout.ms": 30000,
        "queue.buffering.max.messages": 20000,
    })
    deadline = time.monotonic() + MAX_SECONDS
    seq = 0
    while seq < MAX_MESSAGES and time.monotonic() < deadline:
        try:
            producer.produce(topic, value=f"{tag}-{seq:09d}".encode(), partition=seq % partitions,
                             on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.05)
            continue
        seq += 1
        producer.poll(0)
    producer.flush(30)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
