"""Acknowledged writes survive kill -9.

A separate producer process writes unique sequential values with acks=all and
records every delivery report (partition, offset, value).  While it is
producing, the server is SIGKILLed, the producer is killed too (so nothing
unacknowledged is ever retried), and the server is restarted on the same data
dir.  Every acknowledged message must then be present exactly once, at the
offset it was acknowledged with, in per-partition send order.  Three cycles.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from clients import ck_create_topic, ck_read_all

PARTITIONS = 3
CYCLES = 3
ACKS_PER_CYCLE = 5000
PRODUCER = Path(__file__).resolve().parent / "durable_producer.py"


def read_acks(path: Path) -> list[tuple[int, int, str]]:
    """Complete lines of an ack file as (partition, offset, value)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    out = []
    for line in complete.decode().splitlines():
        p, off, value = line.split(" ")
        out.append((int(p), int(off), value))
    return out


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def seq_key(value: str) -> tuple[int, int]:
    """'c<cycle>-<seq>' -> (cycle, seq): the global send order within a partition."""
    tag, seq = value.split("-")
    return int(tag[1:]), int(seq)


def verify(bootstrap: str, topic: str, acked: list[tuple[int, int, str]]) -> None:
    log = ck_read_all(bootstrap, topic, PARTITIONS, timeout=120)
    for p, recs in log.items():
        offsets = [o for o, _, _ in recs]
        assert offsets == list(range(len(recs))), f"partition {p}: log has gaps after recovery"

    at = {(p, o): v.decode() for p, recs in log.items() for (o, _, v) in recs}
    occurrences = Counter(v.decode() for recs in log.values() for (_, _, v) in recs)

    lost = [(p, o, v) for (p, o, v) in acked if (p, o) not in at]
    assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {lost[:5]}"
    moved = [(p, o, v, at[(p, o)]) for (p, o, v) in acked if at[(p, o)] != v]
    assert not moved, f"{len(moved)} acked offsets hold another value, e.g. {moved[:5]}"
    dupes = [v for (_, _, v) in acked if occurrences[v] != 1]
    assert not dupes, f"{len(dupes)} acked values not present exactly once, e.g. {dupes[:5]}"

    for p in range(PARTITIONS):
        mine = sorted((o, v) for (pp, o, v) in acked if pp == p)
        keys = [seq_key(v) for _, v in mine]
        assert keys == sorted(keys), f"partition {p}: acked messages out of send order"
        assert all(seq_key(v)[1] % PARTITIONS == p for _, v in mine), f"partition {p}: foreign values"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_acked_messages_survive_repeated_kill9(server, topic_name, tmp_path):
    ck_create_topic(server.bootstrap, topic_name, PARTITIONS)
    acked: list[tuple[int, int, str]] = []

    for cycle in range(CYCLES):
        ack_file = tmp_path / f"acks-cycle{cycle}.txt"
        err_file = tmp_path / f"producer-cycle{cycle}.stderr"
        with open(err_file, "wb") as err:
            producer = subprocess.Popen(
                [sys.executable, str(PRODUCER), server.bootstrap, topic_name, str(PARTITIONS),
                 f"c{cycle}", str(ack_file)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )
        try:
            deadline = time.monotonic() + 120
            while count_lines(ack_file) < ACKS_PER_CYCLE:
                if producer.poll() is not None:
                    pytest.fail(f"cycle {cycle}: producer exited {producer.returncode} early: "
                                f"{err_file.read_text()[-2000:]}")
                if time.monotonic() >= deadline:
                    pytest.fail(f"cycle {cycle}: only {count_lines(ack_file)} acks after 120s: "
                                f"{err_file.read_text()[-2000:]}")
                time.sleep(0.02)

            # Crash the broker mid-stream, then make sure nothing unacked gets retried.
            server.kill9()
        finally:
            producer.kill()
            producer.wait(timeout=30)

        cycle_acks = read_acks(ack_file)
        assert len(cycle_acks) >= ACKS_PER_CYCLE
        acked.extend(cycle_acks)

        server.start()
        verify(server.bootstrap, topic_name, acked)

    assert len(acked) >= CYCLES * ACKS_PER_CYCLE
