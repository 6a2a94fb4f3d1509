"""Unit tests of the chaos checker (chaos/checker.py) on hand-made histories.

No server and no client library needed: every history here is built by hand, and for every check
there are histories that must pass and histories that must fail.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos import checker  # noqa: E402
from chaos.history import History, load_events_file  # noqa: E402


def base(idempotent: bool = True, retries: bool = True, max_in_flight: int = 5,
         group: bool = False) -> History:
    """One producer "p" and a drain; with group=True also members c1, c2 of group "g"."""
    h = History({"scenario": "unit"})
    h.add_producer("p", idempotent=idempotent, acks="all" if idempotent else "1",
                   retries=retries, max_in_flight=max_in_flight)
    if group:
        h.add_consumer("c1", kind="group", group="g")
        h.add_consumer("c2", kind="group", group="g")
    h.add_consumer("drain", kind="drain")
    return h


def produce(h: History, producer: str, values_offsets: list[tuple[str, int, int]], start_idx: int = 0):
    """Send and ack each (value, partition, offset) in order."""
    for i, (v, p, o) in enumerate(values_offsets, start=start_idx):
        h.send(producer, i, v, p)
        h.ack(producer, i, p, o)


def drain(h: History, records: dict[int, list[str]], hw: dict[int, int] | None = None,
          complete: bool = True):
    """A final drain reading records[p] at offsets 0.. of each partition."""
    hw = hw if hw is not None else {p: len(vs) for p, vs in records.items()}
    h.assignment("assign", "drain", list(records), positions={p: 0 for p in records})
    for p, vs in records.items():
        if vs:
            h.poll("drain", [(p, o, v) for o, v in enumerate(vs)])
    positions = {p: len(vs) for p, vs in records.items()}
    h.drain("drain", hw, positions, complete)


def clean_history() -> History:
    h = base(group=True)
    produce(h, "p", [("a", 0, 0), ("b", 1, 0), ("c", 0, 1), ("d", 1, 1)])
    h.assignment("assign", "c1", [0, 1], group="g", member="m1", generation=1)
    h.poll("c1", [(0, 0, "a"), (0, 1, "c"), (1, 0, "b")])
    h.commit("c1", {0: 2, 1: 1}, group="g", member="m1", generation=1)
    h.poll("c1", [(1, 1, "d")])
    h.commit("c1", {1: 2}, group="g", member="m1", generation=1)
    h.committed("g", {0: 2, 1: 2})
    drain(h, {0: ["a", "c"], 1: ["b", "d"]})
    return h


def kinds(h: History) -> dict[str, int]:
    return checker.check(h).counts()


# ---------------------------------------------------------------------------------------------
# a clean history passes every check; serialisation round-trips
# ---------------------------------------------------------------------------------------------

def test_clean_history_passes():
    report = checker.check(clean_history())
    assert report.ok, report.summary()
    assert report.anomalies == []
    assert report.stats["acked"] == 4 and report.stats["values_read"] == 4


def test_history_json_round_trip(tmp_path):
    h = clean_history()
    path = tmp_path / "h.json"
    h.save(path)
    h2 = History.load(path)
    assert h2.to_json() == json.loads(path.read_text())
    assert checker.check(h2).ok
    assert h2.producers["p"].idempotent is True


def test_events_file_ignores_torn_last_line(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"type": "note", "t": 1}\n{"type": "no')
    assert load_events_file(path) == [{"type": "note", "t": 1}]


# ---------------------------------------------------------------------------------------------
# lost
# ---------------------------------------------------------------------------------------------

def test_lost_acked_never_read():
    h = base()
    produce(h, "p", [("a", 0, 0), ("b", 0, 1)])
    drain(h, {0: ["a"]})
    r = checker.check(h)
    assert r.counts() == {"lost": 1}
    assert r.of("lost")[0].data["value"] == "b"
    assert not r.ok


def test_lost_beyond_high_watermark_is_flagged():
    h = base()
    produce(h, "p", [("a", 0, 0), ("b", 0, 1)])
    drain(h, {0: ["a"]}, hw={0: 1})
    assert checker.check(h).of("lost")[0].data["beyond_high_watermark"] is True


def test_read_only_by_group_consumer_is_not_lost():
    # The drain is one read among others: a value a group member read is not lost.
    h = base()
    produce(h, "p", [("a", 0, 0)])
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    h.poll("c1", [(0, 0, "a")])
    assert "lost" not in kinds(h)


def test_failed_and_unknown_sends_may_be_missing():
    h = base()
    produce(h, "p", [("a", 0, 0)])
    h.send("p", 1, "b", 0)
    h.fail("p", 1, "Local: Message timed out")
    h.send("p", 2, "c", 0)
    h.unknown("p", 2)
    drain(h, {0: ["a"]})
    assert checker.check(h).ok


def test_failed_send_that_was_written_is_fine():
    h = base()
    produce(h, "p", [("a", 0, 0)])
    h.send("p", 1, "b", 0)
    h.fail("p", 1, "Local: Message timed out")
    drain(h, {0: ["a", "b"]})
    assert checker.check(h).ok


# ---------------------------------------------------------------------------------------------
# wrong-ack-offset
# ---------------------------------------------------------------------------------------------

def test_wrong_ack_offset():
    h = base()
    produce(h, "p", [("a", 0, 0), ("b", 0, 5)])
    drain(h, {0: ["a", "b"]})
    r = checker.check(h)
    assert r.counts() == {"wrong-ack-offset": 1}
    assert r.of("wrong-ack-offset")[0].data["read_at"] == [(0, 1)]


def test_two_sends_acked_at_one_offset():
    h = base()
    produce(h, "p", [("a", 0, 0), ("b", 0, 0)])
    drain(h, {0: ["a", "b"]})
    assert kinds(h) == {"wrong-ack-offset": 1}


# ---------------------------------------------------------------------------------------------
# duplicate / duplicate-allowed
# ---------------------------------------------------------------------------------------------

def test_duplicate_from_idempotent_producer_fails():
    h = base(idempotent=True)
    h.send("p", 0, "a", 0)
    h.fault("kill9", 1)
    h.ack("p", 0, 0, 1)
    drain(h, {0: ["a", "a"]})
    r = checker.check(h)
    assert r.counts() == {"duplicate": 1}
    assert r.of("duplicate")[0].data["read_at"] == [(0, 0), (0, 1)]
    assert not r.ok


def test_duplicate_from_retrying_non_idempotent_producer_during_fault_is_allowed():
    h = base(idempotent=False, retries=True)
    h.send("p", 0, "a", 0)
    h.fault("kill9", 1)          # [t_start, t] inside the send's lifetime
    h.ack("p", 0, 0, 1)          # the retry was acked; the first attempt landed at 0
    drain(h, {0: ["a", "a"]})
    r = checker.check(h)
    assert r.counts() == {"duplicate-allowed": 1}
    assert r.ok


def test_duplicate_allowed_by_client_reported_retry_window():
    h = base(idempotent=False, retries=True)
    h.send("p", 0, "a", 0, t=10)
    h.retry("p", t_start=10.5, t=11.5)
    h.ack("p", 0, 0, 1, t=12)
    drain(h, {0: ["a", "a"]})
    assert kinds(h) == {"duplicate-allowed": 1}


def test_duplicate_without_any_disturbance_fails_even_for_non_idempotent():
    h = base(idempotent=False, retries=True)
    h.fault("pause", 1, t_start=1, t=2)       # a fault, but long before the send
    h.send("p", 0, "a", 0, t=10)
    h.ack("p", 0, 0, 1, t=11)
    drain(h, {0: ["a", "a"]})
    assert kinds(h) == {"duplicate": 1}


def test_duplicate_from_non_idempotent_producer_without_retries_fails():
    h = base(idempotent=False, retries=False)
    h.send("p", 0, "a", 0)
    h.fault("kill9", 1)
    h.ack("p", 0, 0, 1)
    drain(h, {0: ["a", "a"]})
    assert kinds(h) == {"duplicate": 1}


def test_send_without_outcome_may_have_been_retried_until_the_producer_closed():
    h = base(idempotent=False, retries=True)
    h.send("p", 0, "a", 0, t=1)
    h.fault("kill9", 1, t_start=5, t=6)       # after the send, no outcome before it
    h.unknown("p", 0, t=20)                   # the producer was closed with it in flight
    h.send("p", 1, "b", 1, t=21)
    h.fault("pause", 1, t_start=25, t=26)     # a send that never got an outcome at all
    drain(h, {0: ["a", "a"], 1: ["b", "b"]})
    assert [a.kind for a in checker.check_duplicates(h)] == ["duplicate-allowed"] * 2


def test_rereading_one_offset_is_not_a_duplicate():
    h = base()
    produce(h, "p", [("a", 0, 0)])
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    h.poll("c1", [(0, 0, "a")])
    h.assignment("revoke", "c1", [0], assignment=[], group="g", member="m1", generation=1)
    h.assignment("assign", "c2", [0], group="g", member="m2", generation=2)
    h.poll("c2", [(0, 0, "a")])
    drain(h, {0: ["a"]})
    assert checker.check(h).ok


# ---------------------------------------------------------------------------------------------
# phantom
# ---------------------------------------------------------------------------------------------

def test_phantom_value():
    h = base()
    produce(h, "p", [("a", 0, 0)])
    drain(h, {0: ["a", "zzz"]})
    r = checker.check(h)
    assert r.counts() == {"phantom": 1}
    assert r.of("phantom")[0].data["value"] == "zzz"


# ---------------------------------------------------------------------------------------------
# inconsistent-offset
# ---------------------------------------------------------------------------------------------

def test_inconsistent_offset_between_group_member_and_drain():
    h = base(idempotent=False)
    h.send("p", 0, "a", 0)
    h.send("p", 1, "b", 0)
    h.ack("p", 1, 0, 0)
    h.fail("p", 0)
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    h.poll("c1", [(0, 0, "a")])      # before a crash, a consumer read "a" at 0 ...
    drain(h, {0: ["b"]})             # ... after it, the log holds "b" there
    r = checker.check(h)
    assert "inconsistent-offset" in r.kinds()
    a = r.of("inconsistent-offset")[0]
    assert a.data["values"] == {"a": ["c1"], "b": ["drain"]}
    assert not r.ok


def test_same_value_read_twice_at_one_offset_is_consistent():
    h = base()
    produce(h, "p", [("a", 0, 0)])
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    h.poll("c1", [(0, 0, "a")])
    drain(h, {0: ["a"]})
    assert checker.check_inconsistent_offsets(h) == []


# ---------------------------------------------------------------------------------------------
# nonmonotonic-poll / skipped-poll
# ---------------------------------------------------------------------------------------------

def _polls(h: History, consumer: str, offsets: list[int], p: int = 0):
    for o in offsets:
        h.poll(consumer, [(p, o, f"v{o}")])


def test_poll_rewind_without_rebalance():
    h = History()
    h.add_consumer("c1", kind="group", group="g")
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    _polls(h, "c1", [0, 1, 2, 1, 2, 3])
    r = checker.check_poll_order(h)
    assert [a.kind for a in r] == ["nonmonotonic-poll"]
    assert (r[0].data["previous"], r[0].data["offset"]) == (2, 1)


def test_poll_repeat_without_rebalance():
    h = History()
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    _polls(h, "c1", [0, 1, 1])
    assert [a.kind for a in checker.check_poll_order(h)] == ["nonmonotonic-poll"]


def test_poll_skip_without_rebalance():
    h = History()
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    _polls(h, "c1", [0, 1, 4, 5])
    r = checker.check_poll_order(h)
    assert [a.kind for a in r] == ["skipped-poll"]
    assert r[0].data["skipped"] == 2


def test_poll_rewind_after_rebalance_is_fine():
    h = History()
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    _polls(h, "c1", [0, 1, 2])
    h.assignment("revoke", "c1", [0], assignment=[], group="g", member="m1", generation=1)
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=2)
    _polls(h, "c1", [1, 2, 3])
    h.seek("c1", 0, 0)
    _polls(h, "c1", [0, 1])
    assert checker.check_poll_order(h) == []


def test_poll_order_is_per_consumer_and_partition():
    h = History()
    h.assignment("assign", "c1", [0, 1], group="g", member="m1", generation=1)
    h.assignment("assign", "c2", [0], group="g2", member="m2", generation=1)
    h.poll("c1", [(0, 0, "x"), (1, 0, "y"), (0, 1, "z")])
    h.poll("c2", [(0, 0, "x")])
    h.poll("c1", [(1, 1, "w")])
    assert checker.check_poll_order(h) == []


def test_drain_must_start_at_its_start_position():
    h = History()
    h.assignment("assign", "drain", [0], positions={0: 0})
    _polls(h, "drain", [2, 3])
    r = checker.check_poll_order(h)
    assert [a.kind for a in r] == ["skipped-poll"]
    assert (r[0].data["previous"], r[0].data["offset"]) == (-1, 2)


# ---------------------------------------------------------------------------------------------
# reorder / reorder-allowed
# ---------------------------------------------------------------------------------------------

def test_idempotent_producer_reordered_fails():
    h = base(idempotent=True)
    h.send("p", 0, "a", 0)
    h.send("p", 1, "b", 0)
    h.fault("kill9", 1)
    h.ack("p", 1, 0, 0)
    h.ack("p", 0, 0, 1)
    drain(h, {0: ["b", "a"]})
    r = checker.check(h)
    assert r.counts() == {"reorder": 1}
    a = r.of("reorder")[0]
    assert a.data["earlier"]["value"] == "a" and a.data["later"]["value"] == "b"


def test_reorder_allowed_for_non_idempotent_retrying_producer_with_pipelining():
    h = base(idempotent=False, retries=True, max_in_flight=5)
    h.send("p", 0, "a", 0)
    h.send("p", 1, "b", 0)
    h.fault("kill9", 1)
    h.ack("p", 1, 0, 0)
    h.ack("p", 0, 0, 1)
    drain(h, {0: ["b", "a"]})
    r = checker.check(h)
    assert r.counts() == {"reorder-allowed": 1}
    assert r.ok


def test_reorder_not_allowed_with_one_request_in_flight():
    h = base(idempotent=False, retries=True, max_in_flight=1)
    h.send("p", 0, "a", 0)
    h.send("p", 1, "b", 0)
    h.fault("kill9", 1)
    h.ack("p", 1, 0, 0)
    h.ack("p", 0, 0, 1)
    drain(h, {0: ["b", "a"]})
    assert kinds(h) == {"reorder": 1}


def test_order_is_per_partition_and_gaps_are_fine():
    h = base()
    produce(h, "p", [("a", 0, 0), ("b", 1, 0), ("c", 0, 2), ("d", 1, 1)])
    h.send("p", 4, "e", 0)
    h.fail("p", 4)
    produce(h, "p", [("f", 0, 3)], start_idx=5)
    assert checker.check_producer_order(h) == []


def test_one_late_send_counts_every_send_it_overtook():
    h = base(idempotent=True)
    produce(h, "p", [("a", 0, 5), ("b", 0, 1), ("c", 0, 2), ("d", 0, 6)])
    assert len(checker.check_producer_order(h)) == 2


# ---------------------------------------------------------------------------------------------
# commit-backwards
# ---------------------------------------------------------------------------------------------

def test_commit_backwards_within_one_generation():
    h = History()
    h.commit("c1", {0: 10}, group="g", member="m1", generation=3)
    h.commit("c1", {0: 7}, group="g", member="m1", generation=3)
    r = checker.check_commit_order(h)
    assert [a.kind for a in r] == ["commit-backwards"]
    assert (r[0].data["previous"], r[0].data["offset"]) == (10, 7)


def test_lower_commit_in_a_new_generation_or_by_another_member_is_fine():
    h = History()
    h.commit("c1", {0: 10}, group="g", member="m1", generation=3)
    h.commit("c1", {0: 7}, group="g", member="m1", generation=4)
    h.commit("c2", {0: 5}, group="g", member="m2", generation=4)
    h.commit("c1", {1: 3}, group="g", member="m1", generation=4)
    assert checker.check_commit_order(h) == []


def test_failed_commit_and_unknown_generation_are_not_compared():
    h = History()
    h.commit("c1", {0: 10}, group="g", member="m1", generation=3)
    h.commit("c1", {0: 2}, group="g", member="m1", generation=3, ok=False, error="timed out")
    h.commit("c1", {0: 9}, group="g", member="m1", generation=-1)
    h.commit("c1", {0: 8}, group="g", member="m1", generation=-1)
    assert checker.check_commit_order(h) == []


def test_lower_commit_after_seek_is_fine():
    h = History()
    h.commit("c1", {0: 10}, group="g", member="m1", generation=3)
    h.seek("c1", 0, 4)
    h.commit("c1", {0: 5}, group="g", member="m1", generation=3)
    assert checker.check_commit_order(h) == []


# ---------------------------------------------------------------------------------------------
# commit-regressed
# ---------------------------------------------------------------------------------------------

def _group():
    h = History()
    h.add_consumer("c1", kind="group", group="g")
    h.add_consumer("c2", kind="group", group="g")
    return h


def test_committed_offset_lost_after_restart():
    h = _group()
    h.commit("c1", {0: 10}, group="g", member="m1", generation=1, t_invoke=1, t=2)
    h.fault("kill9", 1, t_start=3, t=4)
    h.committed("g", {0: -1}, t_invoke=5, t=6)
    r = checker.check_commit_regressed(h)
    assert [a.kind for a in r] == ["commit-regressed"]
    assert (r[0].data["observed"], r[0].data["floor"]) == (-1, 10)


def test_member_resumes_below_acknowledged_commit():
    h = _group()
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1, t=1)
    h.poll("c1", [(0, 0, "a"), (0, 1, "b")], t=2)
    h.commit("c1", {0: 2}, group="g", member="m1", generation=1, t_invoke=3, t=4)
    h.fault("kill9", 1, t_start=5, t=6)
    h.assignment("revoke", "c1", [0], assignment=[], group="g", member="m1", generation=1, t=7)
    h.assignment("assign", "c2", [0], group="g", member="m2", generation=2, t=8)
    h.poll("c2", [(0, 0, "a")], t=9)        # restarted from 0, not 2
    r = checker.check(h)
    assert r.counts() == {"commit-regressed": 1, "phantom": 2}  # (nothing was sent here)
    assert r.of("commit-regressed")[0].data["observed"] == 0


def test_resuming_at_the_latest_commit_is_fine():
    h = _group()
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1, t=1)
    h.poll("c1", [(0, 0, "a"), (0, 1, "b")], t=2)
    h.commit("c1", {0: 2}, group="g", member="m1", generation=1, t_invoke=3, t=4)
    h.assignment("revoke", "c1", [0], assignment=[], group="g", member="m1", generation=1, t=7)
    h.assignment("assign", "c2", [0], group="g", member="m2", generation=2, t=8)
    h.poll("c2", [(0, 2, "c")], t=9)
    h.committed("g", {0: 2}, t_invoke=10, t=11)
    assert checker.check_commit_regressed(h) == []


def test_later_lower_commit_is_the_floor():
    # Another member legally committed a lower offset later: that one is what must be returned.
    h = _group()
    h.commit("c1", {0: 10}, group="g", member="m1", generation=1, t_invoke=1, t=2)
    h.commit("c2", {0: 4}, group="g", member="m2", generation=2, t_invoke=3, t=4)
    h.committed("g", {0: 4}, t_invoke=5, t=6)
    assert checker.check_commit_regressed(h) == []


def test_concurrent_commits_either_may_win():
    h = _group()
    h.commit("c1", {0: 10}, group="g", member="m1", generation=1, t_invoke=1, t=3)
    h.commit("c2", {0: 4}, group="g", member="m2", generation=1, t_invoke=2, t=4)
    h.committed("g", {0: 4}, t_invoke=5, t=6)
    h.committed("g", {0: 3}, t_invoke=7, t=8)   # below both: regressed
    r = checker.check_commit_regressed(h)
    assert [(a.data["observed"], a.data["floor"]) for a in r] == [(3, 4)]


def test_failed_commit_may_have_been_applied():
    h = _group()
    h.commit("c1", {0: 10}, group="g", member="m1", generation=1, t_invoke=1, t=2)
    h.commit("c2", {0: 3}, group="g", member="m2", generation=1, t_invoke=3, t=4,
             ok=False, error="Broker: Request timed out")
    h.committed("g", {0: 3}, t_invoke=5, t=6)
    assert checker.check_commit_regressed(h) == []


def test_commit_invoked_during_the_observation_may_count():
    # The observation's window [t0, t1] overlaps a commit: it may or may not have been applied.
    h = _group()
    h.commit("c1", {0: 10}, group="g", member="m1", generation=1, t_invoke=1, t=2)
    h.commit("c1", {0: 12}, group="g", member="m1", generation=1, t_invoke=4, t=6)
    h.committed("g", {0: 10}, t_invoke=3, t=5)
    assert checker.check_commit_regressed(h) == []
    h.committed("g", {0: 10}, t_invoke=7, t=8)   # after the second commit's ack: must be 12
    assert [a.data["floor"] for a in checker.check_commit_regressed(h)] == [12]


def test_first_poll_before_any_commit_is_unconstrained():
    h = _group()
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    h.poll("c1", [(0, 0, "a")])
    assert checker.check_commit_regressed(h) == []


# ---------------------------------------------------------------------------------------------
# double-ownership
# ---------------------------------------------------------------------------------------------

def test_two_members_own_a_partition_in_one_generation():
    h = _group()
    h.assignment("assign", "c1", [0, 1], group="g", member="m1", generation=2)
    h.assignment("assign", "c2", [1, 2], group="g", member="m2", generation=2)
    r = checker.check_ownership(h)
    assert [a.kind for a in r] == ["double-ownership"]
    assert r[0].data == {"group": "g", "generation": 2, "partition": 1, "members": ["m1", "m2"]}


def test_handover_across_generations_is_fine():
    h = _group()
    h.assignment("assign", "c1", [0, 1, 2], group="g", member="m1", generation=1)
    h.assignment("revoke", "c1", [0, 1, 2], assignment=[], group="g", member="m1", generation=1)
    h.assignment("assign", "c1", [0, 1], group="g", member="m1", generation=2)
    h.assignment("assign", "c2", [2], group="g", member="m2", generation=2)
    h.assignment("assign", "c3", [2], group="other", member="m3", generation=2)
    h.assignment("assign", "c2", [0, 1, 2], group="g", member="m2", generation=-1)  # unknown
    assert checker.check_ownership(h) == []


# ---------------------------------------------------------------------------------------------
# drain-incomplete, server-failure, no-progress, malformed-history
# ---------------------------------------------------------------------------------------------

def test_incomplete_drain():
    h = base()
    produce(h, "p", [("a", 0, 0), ("b", 0, 1)])
    drain(h, {0: ["a"]}, hw={0: 2}, complete=False)
    r = checker.check(h)
    assert r.counts() == {"lost": 1, "drain-incomplete": 1}
    assert r.of("drain-incomplete")[0].data["short"] == {0: [1, 2]}


def test_missing_drain_when_required():
    h = base()
    h.meta["drain_required"] = True
    produce(h, "p", [("a", 0, 0)])
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    h.poll("c1", [(0, 0, "a")])
    assert kinds(h) == {"drain-incomplete": 1}


def test_server_failure_events():
    h = clean_history()
    h.server(1, "not-ready", "not ready 30 s after restart")
    assert kinds(h) == {"server-failure": 1}


def test_no_progress():
    h = base()
    h.send("p", 0, "a", 0)
    h.fail("p", 0)
    r = checker.check(h)
    assert r.counts() == {"no-progress": 1}


def test_group_that_read_nothing_is_no_progress():
    h = base(group=True)
    produce(h, "p", [("a", 0, 0)])
    drain(h, {0: ["a"]})
    assert kinds(h) == {"no-progress": 1}


@pytest.mark.parametrize("mutate, problem", [
    (lambda h: h.ack("p", 7, 0, 3), "never invoked"),
    (lambda h: (h.send("p", 7, "x", 0), h.ack("p", 7, 0, 9), h.fail("p", 7)), "two outcomes"),
    (lambda h: (h.send("p", 7, "a", 0), h.fail("p", 7)), "sent 2 times"),
])
def test_malformed_history(mutate, problem):
    h = clean_history()
    mutate(h)
    r = checker.check(h)
    assert "malformed-history" in r.kinds()
    assert any(problem in a.detail for a in r.of("malformed-history"))


# ---------------------------------------------------------------------------------------------
# disk faults: acked-during-disk-fault, probe-failed, no-progress after a fault that must heal
# ---------------------------------------------------------------------------------------------

def test_ack_of_a_send_made_while_fsyncs_fail_is_an_anomaly():
    h = base()
    h.send("p", 0, "a", 0, t=1)                    # before the fault: may be acked during it
    h.disk_fault(1, t_start=2, t=10, fail_syncs=1)
    h.ack("p", 0, 0, 0, t=3)
    h.send("p", 1, "b", 0, t=4)                    # during, acked during: not durable
    h.ack("p", 1, 0, 1, t=5)
    h.send("p", 2, "c", 0, t=6)                    # during, acked after the fault: fine
    h.ack("p", 2, 0, 2, t=11)
    drain(h, {0: ["a", "b", "c"]}, )
    h.events.sort(key=lambda e: e["t"])
    r = checker.check(h)
    assert r.counts() == {"acked-during-disk-fault": 1}
    assert r.of("acked-during-disk-fault")[0].data["value"] == "b"
    assert not r.ok


def test_ack_while_one_replica_of_a_cluster_fails_its_fsyncs_is_not_an_anomaly():
    """The other replicas may acknowledge meanwhile; the same history on one node is one."""
    for replicated, expected in [(True, {}), (False, {"acked-during-disk-fault": 1})]:
        h = base()
        h.disk_fault(3, t_start=1, t=10, replicated=replicated, fail_syncs=1)
        h.send("p", 0, "a", 0, t=2)
        h.ack("p", 0, 0, 0, t=3)
        drain(h, {0: ["a"]})
        h.events.sort(key=lambda e: e["t"])
        assert kinds(h) == expected, replicated


def test_ack_while_the_disk_is_full_is_an_anomaly_but_not_with_slow_fsyncs():
    for plan, expected in [({"disk_full": 1, "torn_write_bytes": 40}, {"acked-during-disk-fault": 1}),
                           ({"sync_delay_ms": 150}, {})]:
        h = base()
        h.disk_fault(1, t_start=1, t=10, **plan)
        h.send("p", 0, "a", 0, t=2)
        h.ack("p", 0, 0, 0, t=3)
        drain(h, {0: ["a"]})
        h.events.sort(key=lambda e: e["t"])
        assert kinds(h) == expected, plan


def test_no_ack_after_a_disk_fault_that_must_heal_is_no_progress():
    h = base()
    produce(h, "p", [("a", 0, 0)])                 # t = 1, 2
    h.disk_fault(1, t_start=3, t=4, expect_resume=True, disk_full=1)
    h.send("p", 1, "b", 0, t=5)
    h.fail("p", 1, "KafkaError: KAFKA_STORAGE_ERROR", t=6)
    drain(h, {0: ["a"]})
    r = checker.check(h)
    assert r.counts() == {"no-progress": 1}
    assert "after the disk fault" in r.of("no-progress")[0].detail
    # one acked send after the fault is enough
    h.send("p", 2, "c", 0, t=20)
    h.ack("p", 2, 0, 1, t=21)
    h.poll("drain", [(0, 1, "c")], t=22)
    assert checker.check_disk_faults(h) == []


def test_probe_mismatch_fails_and_a_match_passes():
    h = clean_history()
    h.probe(1, "ready while fsyncs fail (a log went offline)", "unready", "unready")
    assert checker.check(h).ok
    h.probe(1, "check of the data dir after the corruption", "exit 1, names the segment",
            "exit 0, does not name the segment", "checked 3 partitions: 0 problem(s)")
    r = checker.check(h)
    assert r.counts() == {"probe-failed": 1}
    assert "expected exit 1" in r.of("probe-failed")[0].detail and not r.ok


# ---------------------------------------------------------------------------------------------
# injected corruption: lost-to-injected-corruption, offset-reused-after-corruption, corrupt-served,
# offset-out-of-range, and the other checks around a log cut
# ---------------------------------------------------------------------------------------------

def corrupted_history(group_read_all: bool = True) -> History:
    """Partition 0: a, b, c, d, e acked at 0..4 and read by c1; then a corruption destroys [2, 5)
    (the batch at 2 flipped: "c" now spells "C"); after the restart f, g are acked at 2, 3 (offsets
    reused); the drain reads a, b, f, g."""
    h = base(group=True)
    produce(h, "p", [("a", 0, 0), ("b", 0, 1), ("c", 0, 2), ("d", 0, 3), ("e", 0, 4)])
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    if group_read_all:
        h.poll("c1", [(0, o, v) for o, v in enumerate("abcde")])
        h.commit("c1", {0: 5}, group="g", member="m1", generation=1)
    h.fault("corrupt-segment", 1)
    h.corruption(0, 2, 5, [(2, "c"), (3, "d"), (4, "e")], how="flip", batch=(2, 2), offset=2,
                 corrupted_value="C")
    # the consumer was beyond the cut: it resets explicitly to the log start
    if group_read_all:
        h.seek("c1", 0, 0, reason="offset-out-of-range", position=5)
    produce(h, "p", [("f", 0, 2), ("g", 0, 3)], start_idx=5)
    if group_read_all:
        h.poll("c1", [(0, 0, "a"), (0, 1, "b"), (0, 2, "f"), (0, 3, "g")])
        h.commit("c1", {0: 4}, group="g", member="m1", generation=1)
    drain(h, {0: ["a", "b", "f", "g"]})
    return h


def test_corruption_loss_inside_the_declared_range_is_reported_not_failed():
    r = checker.check(corrupted_history())
    assert r.ok, r.summary()
    assert r.counts() == {"lost-to-injected-corruption": 3, "offset-reused-after-corruption": 2}
    assert sorted(a.data["value"] for a in r.of("lost-to-injected-corruption")) == ["c", "d", "e"]
    assert {a.data["offset"] for a in r.of("offset-reused-after-corruption")} == {2, 3}
    assert r.stats["corruptions"] == 1


def test_corruption_history_round_trips_through_json(tmp_path):
    h = corrupted_history()
    h.save(tmp_path / "h.json")
    assert checker.check(History.load(tmp_path / "h.json")).counts() == checker.check(h).counts()


def test_loss_before_the_declared_range_fails_even_if_read_before_the_corruption():
    # The server cut one batch too early: "b" at 1 (outside [2, 5)) is gone.  A group member read
    # it before the corruption, but only the drain after it shows what survived.
    h = corrupted_history()
    h.events = [e for e in h.events if not (e["type"] == "drain")]
    for e in h.events:
        if e["type"] == "poll" and e["consumer"] == "drain":
            e["records"] = [r for r in e["records"] if r[2] != "b"]
    h.drain("drain", {0: 4}, {0: 4}, True)
    r = checker.check(h)
    assert [a.data["value"] for a in r.of("lost")] == ["b"]
    assert r.of("lost")[0].data["read_before_corruption"] is True
    assert not r.ok


def test_loss_after_the_corruption_is_not_excused_by_it():
    # "f" was acked after the restart at 2, inside the old range: the new incarnation must keep it.
    h = corrupted_history()
    for e in h.events:
        if e["type"] == "poll":
            e["records"] = [r for r in e["records"] if r[2] != "f"]
    r = checker.check(h)
    assert [a.data["value"] for a in r.of("lost")] == ["f"]
    assert not r.ok


def test_loss_in_another_partition_than_the_corrupted_one_fails():
    h = corrupted_history()
    h.send("p", 7, "x", 1, t=h.events[0]["t"] + 0.5)
    h.ack("p", 7, 1, 2, t=h.events[0]["t"] + 0.6)    # acked at 1@2: offsets 2..4 only of p0 cut
    h.events.sort(key=lambda e: e["t"])
    r = checker.check(h)
    assert [a.kind for a in r.failures] == ["lost"]


def test_corrupted_value_served_fails():
    h = corrupted_history()
    h.poll("c1", [(0, 2, "C")], t=h.events[-3]["t"] + 0.1)   # the flipped record, served
    h.events.sort(key=lambda e: e["t"])
    r = checker.check(h)
    assert {"corrupt-served", "phantom"} <= r.kinds()
    assert not r.ok
    # ... and such a value does not count as the one re-use of the offset
    assert all(a.data["offset"] != 2 for a in r.of("offset-reused-after-corruption"))


def test_damaged_batch_served_to_the_drain_fails():
    # the drain, after the corruption, reads the damaged batch's record with its old value: the
    # server served a batch whose CRC fails (clients do not check CRCs by default)
    h = base()
    produce(h, "p", [("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
    h.corruption(0, 1, 3, [(1, "b"), (2, "c")], batch=(1, 1), offset=1)
    drain(h, {0: ["a", "b", "c"]})
    r = checker.check(h)
    assert [a.kind for a in r.failures] == ["corrupt-served"]
    assert r.of("corrupt-served")[0].data["offset"] == 1


def test_two_new_values_at_a_destroyed_offset_are_inconsistent():
    h = corrupted_history()
    h.poll("c1", [(0, 2, "g")], t=h.events[-3]["t"] + 0.1)
    h.events.sort(key=lambda e: e["t"])
    r = checker.check(h)
    assert "inconsistent-offset" in r.kinds() and not r.ok
    assert r.of("inconsistent-offset")[0].data["offset"] == 2


def test_inconsistent_offset_outside_the_destroyed_range_fails():
    h = corrupted_history()
    h.poll("c1", [(0, 1, "f")], t=h.events[-3]["t"] + 0.1)
    h.events.sort(key=lambda e: e["t"])
    r = checker.check(h)
    assert [a.data["offset"] for a in r.of("inconsistent-offset")] == [1]


def test_offsets_reused_after_a_cut_are_not_a_reorder_but_reorders_are_still_found():
    h = corrupted_history()
    assert checker.check_producer_order(h) == []
    # a reorder within the new incarnation: h@5 before g@3 ... from a later send
    produce(h, "p", [("h", 0, 5), ("i", 0, 4)], start_idx=7)
    assert [a.kind for a in checker.check_producer_order(h)] == ["reorder"]
    # a reorder before the corruption, inside the range that was later destroyed
    h2 = base()
    produce(h2, "p", [("a", 0, 0), ("b", 0, 3), ("c", 0, 2)])
    h2.corruption(0, 2, 4, [(2, "c"), (3, "b")], batch=(2, 2))
    produce(h2, "p", [("d", 0, 2)], start_idx=3)
    drain(h2, {0: ["a", "d"]})
    r = checker.check_producer_order(h2)
    assert len(r) == 1 and r[0].data["later"]["value"] == "c"


def test_resend_of_a_destroyed_unacknowledged_copy_is_an_allowed_duplicate():
    # an idempotent producer's send written at 2, unanswered at the stop; the corruption destroys
    # [1, 3); after the restart the retry lands at 1 and is acked there
    h = base(idempotent=True, group=True)
    produce(h, "p", [("a", 0, 0), ("b", 0, 1)])
    h.send("p", 2, "c", 0)
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    h.poll("c1", [(0, 0, "a"), (0, 1, "b"), (0, 2, "c")])
    h.corruption(0, 1, 3, [(1, "b"), (2, "c")], batch=(1, 1))
    h.ack("p", 2, 0, 1)
    produce(h, "p", [("d", 0, 2)], start_idx=3)
    drain(h, {0: ["a", "c", "d"]})
    r = checker.check(h)
    assert r.ok, r.summary()
    assert len(r.of("duplicate-allowed")) == 1
    assert r.of("duplicate-allowed")[0].data["destroyed_copies"] == [(0, 2)]
    assert r.counts() == {"lost-to-injected-corruption": 1, "duplicate-allowed": 1,
                          "offset-reused-after-corruption": 2}


def test_resend_of_an_acknowledged_destroyed_copy_by_an_idempotent_producer_fails():
    h = base(idempotent=True, group=True)
    produce(h, "p", [("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    h.poll("c1", [(0, 0, "a"), (0, 1, "b"), (0, 2, "c")])
    h.corruption(0, 1, 3, [(1, "b"), (2, "c")], batch=(1, 1))
    drain(h, {0: ["a", "c"]})            # "c", acked at 2 before, shows up again at 1
    r = checker.check(h)
    assert "duplicate" in r.kinds() and not r.ok


def test_out_of_range_reset_needs_a_cut_below_the_position():
    h = corrupted_history()
    assert checker.check_resets(h) == []
    # a reset on a partition no corruption cut
    h.seek("c1", 1, 0, reason="offset-out-of-range", position=7)
    # a reset at a position the cut did not reach (the log still held offsets up to 2)
    h.seek("c1", 0, 0, reason="offset-out-of-range", position=2)
    # a reset because no offset was committed yet is not checked
    h.seek("c2", 1, 0, reason="no-committed-offset", position=-1001)
    r = checker.check_resets(h)
    assert [(a.kind, a.data["partition"], a.data["position"]) for a in r] == [
        ("offset-out-of-range", 1, 7), ("offset-out-of-range", 0, 2)]


def test_seek_to_a_known_offset_sets_the_next_expected_offset():
    h = History()
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    _polls(h, "c1", [0, 1, 2])
    h.seek("c1", 0, 0, reason="offset-out-of-range", position=3)
    _polls(h, "c1", [0, 1])
    assert checker.check_poll_order(h) == []
    h.seek("c1", 0, 0, reason="offset-out-of-range", position=2)
    _polls(h, "c1", [5])                 # the seek said 0: 5 skips 0..4
    assert [a.kind for a in checker.check_poll_order(h)] == ["skipped-poll"]


def test_commits_after_an_explicit_reset_may_go_lower():
    h = corrupted_history()
    assert checker.check_commit_order(h) == []
    h2 = corrupted_history()
    h2.events = [e for e in h2.events if e["type"] != "seek"]     # a silent rewind
    r = checker.check(h2)
    assert {"nonmonotonic-poll", "commit-backwards"} <= r.kinds()


def test_lost_to_injected_corruption_is_only_for_sends_acked_before_it():
    # a send acked in the range, but after the corruption, that the drain misses is lost
    h = base()
    produce(h, "p", [("a", 0, 0), ("b", 0, 1)])
    h.corruption(0, 1, 2, [(1, "b")], batch=(1, 1))
    produce(h, "p", [("c", 0, 1)], start_idx=2)
    drain(h, {0: ["a"]}, hw={0: 2}, complete=True)
    r = checker.check(h)
    assert [a.data["value"] for a in r.of("lost-to-injected-corruption")] == ["b"]
    assert [a.data["value"] for a in r.of("lost")] == ["c"]


# ---------------------------------------------------------------------------------------------
# segment parsing (chaos/segments.py), on a batch built byte by byte
# ---------------------------------------------------------------------------------------------

def _zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _batch(base_offset: int, values: list[bytes | None], key: bytes | None = b"k") -> bytes:
    records = b""
    for i, v in enumerate(values):
        body = (b"\x00" + _zigzag(0) + _zigzag(i)
                + (_zigzag(-1) if key is None else _zigzag(len(key)) + key)
                + (_zigzag(-1) if v is None else _zigzag(len(v)) + v)
                + _zigzag(0))
        records += _zigzag(len(body)) + body
    after_length = (b"\x00\x00\x00\x00" + b"\x02" + b"\x00\x00\x00\x00"    # epoch, magic, crc
                    + b"\x00\x00" + (len(values) - 1).to_bytes(4, "big")    # attributes, delta
                    + b"\x00" * 16 + b"\xff" * 8 + b"\xff\xff" + b"\xff" * 4  # times, pid, epoch, seq
                    + len(values).to_bytes(4, "big") + records)
    return base_offset.to_bytes(8, "big") + len(after_length).to_bytes(4, "big") + after_length


def test_segment_parser_finds_records_values_and_their_positions():
    from chaos import segments

    data = _batch(0, [b"tag/p/0", b"tag/p/1"]) + _batch(2, [None], key=None) + _batch(3, [b"x" * 200])
    batches = segments.parse_segment(data + b"\x00\x00\x00")      # a torn tail is ignored
    assert [(b.base_offset, b.last_offset) for b in batches] == [(0, 1), (2, 2), (3, 3)]
    assert batches[1].pos == batches[0].end and batches[2].end == len(data)
    recs = [r for b in batches for r in b.records]
    assert [(r.offset, r.value) for r in recs] == [(0, b"tag/p/0"), (1, b"tag/p/1"), (2, None),
                                                   (3, b"x" * 200)]
    for r in recs:
        if r.value is not None:
            assert data[r.value_pos:r.value_pos + len(r.value)] == r.value
    assert segments.parse_segment(data[:len(data) - 5])[-1].base_offset == 2


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------

def test_report_counts_and_json():
    h = base(idempotent=False)
    h.send("p", 0, "a", 0)
    h.fault("kill9", 1)
    h.ack("p", 0, 0, 1)
    h.send("p", 1, "b", 0)
    h.ack("p", 1, 0, 2)
    h.assignment("assign", "c1", [0], group="g", member="m1", generation=1)
    h.poll("c1", [(0, 0, "a"), (0, 1, "a")])
    drain(h, {0: ["a", "a"]})
    r = checker.check(h)
    assert r.counts() == {"lost": 1, "duplicate-allowed": 1}
    assert r.summary() == "lost: 1, duplicate-allowed: 1"
    assert not r.ok and [a.kind for a in r.failures] == ["lost"]
    js = r.to_json()
    json.dumps(js)
    assert js["counts"] == {"lost": 1, "duplicate-allowed": 1} and js["ok"] is False


def test_every_kind_is_documented():
    for kind in checker.KINDS:
        assert kind in checker.__doc__ or kind.removesuffix("-allowed") in checker.__doc__


# ---------------------------------------------------------------------------------------------
# replicas (cluster scenarios)
# ---------------------------------------------------------------------------------------------

def replicated_history() -> History:
    h = base()
    produce(h, "p", [("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
    drain(h, {0: ["a", "b", "c"]})
    return h


def test_replicas_identical_to_what_was_served_pass():
    h = replicated_history()
    for node in (1, 2, 3):
        # a record beyond the high watermark (not committed) is not compared
        h.replica(node, 0, [(0, "a"), (1, "b"), (2, "c")] + ([(3, "x")] if node == 2 else []))
    r = checker.check(h)
    assert r.ok, r.summary()
    assert r.stats["replicas_compared"] == 3


def test_replica_holding_another_value_below_the_high_watermark_fails():
    h = replicated_history()
    h.replica(1, 0, [(0, "a"), (1, "b"), (2, "c")])
    h.replica(2, 0, [(0, "a"), (1, "zz"), (2, "c")])
    r = checker.check(h)
    assert r.counts() == {"replica-diverged": 1}
    assert r.of("replica-diverged")[0].data["node"] == 2
    # the replica's value is no read: lost / inconsistent-offset are not affected
    assert "inconsistent-offset" not in r.kinds()


def test_replica_lacking_committed_offsets_fails_once_per_range():
    h = replicated_history()
    h.replica(1, 0, [(0, "a"), (1, "b"), (2, "c")])
    h.replica(3, 0, [(1, "b")])
    r = checker.check(h)
    assert r.counts() == {"replica-diverged": 2}
    assert sorted(a.data["missing"] for a in r.of("replica-diverged")) == [[0, 1], [2, 3]]


def test_replica_batches_that_cannot_be_decoded_are_not_compared():
    h = replicated_history()
    h.replica(1, 0, [(0, "a")], opaque=[(1, 2)])
    assert checker.check(h).ok


# ---------------------------------------------------------------------------------------------
# transactions: aborted-read, committed-lost, txn-atomicity, and the other checks around them
# ---------------------------------------------------------------------------------------------
# The log of txn_history(), as the broker would hold it (M = a transaction marker, which no
# consumer returns; offsets of both partitions):
#   p0: 0 a | 1 t0 (txn 0) | 2 M commit | 3 t2 (txn 1) | 4 M abort | 5 t4 (txn 2) | 6 M commit | 7 b
#   p1: 0 t1 (txn 0) | 1 M commit | 2 t3 (txn 1) | 3 M abort | 4 c
COMMITTED_VIEW = {0: [(0, "a"), (1, "t0"), (5, "t4"), (7, "b")], 1: [(0, "t1"), (4, "c")]}
UNCOMMITTED_VIEW = {0: [(0, "a"), (1, "t0"), (3, "t2"), (5, "t4"), (7, "b")],
                    1: [(0, "t1"), (2, "t3"), (4, "c")]}
HW = {0: 8, 1: 5}


def drain_at(h: History, name: str, records: dict[int, list[tuple[int, str]]],
             hw: dict[int, int] | None = None, complete: bool = True):
    """A final drain `name` reading records[p] = [(offset, value)...] from offset 0, ending at hw
    (its position there: the partition's end, markers included)."""
    hw = HW if hw is None else hw
    h.assignment("assign", name, list(records), positions={p: 0 for p in records})
    for p, recs in records.items():
        if recs:
            h.poll(name, [(p, o, v) for o, v in recs])
    h.drain(name, hw, dict(hw), complete)


def txn_send(h: History, idx: int, value: str, txn: int, at: tuple[int, int] | None):
    """A send of transactional producer "t" in transaction txn, delivered at `at` (or failed)."""
    h.send("t", idx, value, at[0] if at else idx % 2, txn=txn)
    if at is None:
        h.fail("t", idx, "Local: Purged in queue")
    else:
        h.ack("t", idx, at[0], at[1])


def txn_history(*, committed_view=None, uncommitted_view=None, group_reads=None,
                txn1_outcome: str = "aborted", txn1_commit_requested: bool = False) -> History:
    """Producer "p" (plain, idempotent) and "t" (transactional): txn 0 committed, txn 1 aborted
    (by default), txn 2 committed; group member c1 reading the committed view; a read_committed
    drain and a read_uncommitted one (drain-uncommitted)."""
    h = History({"scenario": "unit-txn"})
    h.add_producer("p", idempotent=True)
    h.add_producer("t", idempotent=True, transactional=True)
    h.add_consumer("c1", kind="group", group="g")
    h.add_consumer("drain", kind="drain")
    h.add_consumer("drain-uncommitted", kind="drain", isolation="read_uncommitted")
    h.send("p", 0, "a", 0)
    h.ack("p", 0, 0, 0)
    txn_send(h, 0, "t0", 0, (0, 1))
    txn_send(h, 1, "t1", 0, (1, 0))
    h.txn("t", 0, [0, 1], decision="commit", outcome="committed")
    txn_send(h, 2, "t2", 1, (0, 3))
    txn_send(h, 3, "t3", 1, (1, 2))
    h.txn("t", 1, [2, 3], decision="abort" if not txn1_commit_requested else "commit",
          outcome=txn1_outcome, commit_requested=txn1_commit_requested)
    txn_send(h, 4, "t4", 2, (0, 5))
    h.txn("t", 2, [4], decision="commit", outcome="committed")
    h.send("p", 1, "b", 0)
    h.ack("p", 1, 0, 7)
    h.send("p", 2, "c", 1)
    h.ack("p", 2, 1, 4)
    h.assignment("assign", "c1", [0, 1], group="g", member="m1", generation=1)
    for p, recs in (group_reads or COMMITTED_VIEW).items():
        if recs:
            h.poll("c1", [(p, o, v) for o, v in recs])
    h.commit("c1", dict(HW), group="g", member="m1", generation=1)   # positions past the markers
    h.committed("g", dict(HW))
    drain_at(h, "drain", COMMITTED_VIEW if committed_view is None else committed_view)
    drain_at(h, "drain-uncommitted", UNCOMMITTED_VIEW if uncommitted_view is None
             else uncommitted_view)
    return h


def test_transactional_history_passes_with_markers_and_aborted_records_skipped():
    h = txn_history()
    r = checker.check(h)
    assert r.ok and r.anomalies == [], r.summary()
    assert (r.stats["txns"], r.stats["txns_committed"], r.stats["txns_aborted"],
            r.stats["txns_unknown"]) == (3, 2, 1, 0)


def test_transactional_history_round_trips_through_json(tmp_path):
    h = txn_history()
    h.save(tmp_path / "h.json")
    h2 = History.load(tmp_path / "h.json")
    assert h2.producers["t"].transactional and not h2.producers["p"].transactional
    assert h2.consumers["drain-uncommitted"].isolation == "read_uncommitted"
    assert checker.check(h2).to_json() == checker.check(h).to_json()


def test_aborted_value_read_by_a_group_member_is_an_aborted_read():
    reads = {0: [(0, "a"), (1, "t0"), (3, "t2"), (5, "t4"), (7, "b")], 1: COMMITTED_VIEW[1]}
    r = checker.check(txn_history(group_reads=reads))
    assert r.counts() == {"aborted-read": 1}
    a = r.of("aborted-read")[0]
    assert (a.data["value"], a.data["consumer"], a.data["transaction"]["outcome"]) == (
        "t2", "c1", "aborted")
    assert not r.ok


def test_aborted_value_read_by_the_read_committed_drain_is_an_aborted_read():
    view = {0: COMMITTED_VIEW[0], 1: [(0, "t1"), (2, "t3"), (4, "c")]}
    r = checker.check(txn_history(committed_view=view))
    assert r.counts() == {"aborted-read": 1}
    assert r.of("aborted-read")[0].data["consumer"] == "drain"


def test_aborted_values_read_uncommitted_are_fine_and_never_lost():
    # drain-uncommitted reads t2 and t3 (delivered, then aborted); nobody read_committed does.
    r = checker.check(txn_history())
    assert "aborted-read" not in r.kinds() and "lost" not in r.kinds()
    # and without the read_uncommitted drain, the aborted values are simply never read
    h = txn_history(uncommitted_view={0: [], 1: []})
    assert "lost" not in checker.check(h).kinds()


def test_unknown_outcome_without_a_commit_request_must_stay_invisible():
    reads = {0: COMMITTED_VIEW[0], 1: [(0, "t1"), (2, "t3"), (4, "c")]}
    h = txn_history(group_reads=reads, txn1_outcome="unknown")
    r = checker.check(h)
    assert r.counts() == {"aborted-read": 1}
    assert "commit never requested" in r.of("aborted-read")[0].detail


def test_committed_value_missing_from_the_drain_is_committed_lost():
    # the group member read t4, the final read_committed drain did not
    view = {0: [(0, "a"), (1, "t0"), (7, "b")], 1: COMMITTED_VIEW[1]}
    r = checker.check(txn_history(committed_view=view))
    assert r.counts()["committed-lost"] == 1
    a = r.of("committed-lost")[0]
    assert a.data["value"] == "t4" and a.data["transaction"]["outcome"] == "committed"
    assert "lost" not in r.kinds()   # transactional sends are committed-lost's, not lost's
    assert not r.ok


def test_committed_value_read_only_uncommitted_is_committed_lost():
    view = {0: COMMITTED_VIEW[0], 1: [(4, "c")]}
    reads = {0: COMMITTED_VIEW[0], 1: [(4, "c")]}
    r = checker.check(txn_history(committed_view=view, group_reads=reads))
    assert r.of("committed-lost")[0].data["value"] == "t1"
    assert r.counts()["committed-lost"] == 1


def test_committed_transaction_with_a_failed_delivery_report_is_still_covered():
    # commit_transaction returned: all its records were delivered, whatever a report said
    h = txn_history()
    txn_send(h, 5, "t5", 3, None)
    h.txn("t", 3, [5], decision="commit", outcome="committed")
    r = checker.check(h)
    assert r.counts() == {"committed-lost": 1}
    assert r.of("committed-lost")[0].data["value"] == "t5"


def test_unknown_transaction_partially_visible_breaks_atomicity():
    # txn 1 of unknown outcome whose commit was requested: the group member saw t3 (so it
    # committed), the drain has t3 but not t2
    reads = {0: COMMITTED_VIEW[0], 1: [(0, "t1"), (2, "t3"), (4, "c")]}
    h = txn_history(group_reads=reads, committed_view=reads, txn1_outcome="unknown",
                    txn1_commit_requested=True)
    r = checker.check(h)
    # t2 at 0@3 must then be visible: the drain and the member skipping it are skips too
    assert r.counts() == {"txn-atomicity": 1, "skipped-poll": 2}, r.summary()
    assert {a.data["must_return"][0] for a in r.of("skipped-poll")} == {3}
    a = r.of("txn-atomicity")[0]
    assert a.data["missing_from_drain"] == ["t2"] and a.data["read_committed"] == ["t3"]


def test_unknown_transaction_all_or_nothing_is_fine():
    # invisible everywhere: it aborted
    h = txn_history(txn1_outcome="unknown", txn1_commit_requested=True)
    assert checker.check(h).ok
    # visible in full: it committed (and its offsets are then no longer skippable)
    view = {0: [(0, "a"), (1, "t0"), (3, "t2"), (5, "t4"), (7, "b")],
            1: [(0, "t1"), (2, "t3"), (4, "c")]}
    h = txn_history(group_reads=view, committed_view=view, txn1_outcome="unknown",
                    txn1_commit_requested=True)
    r = checker.check(h)
    assert r.ok and r.anomalies == [], r.summary()


def test_transaction_seen_by_a_member_but_gone_from_the_drain_breaks_atomicity():
    view = {0: [(0, "a"), (1, "t0"), (3, "t2"), (5, "t4"), (7, "b")],
            1: [(0, "t1"), (2, "t3"), (4, "c")]}
    h = txn_history(group_reads=view, txn1_outcome="unknown", txn1_commit_requested=True)
    r = checker.check(h)
    assert r.counts()["txn-atomicity"] == 1
    assert sorted(r.of("txn-atomicity")[0].data["missing_from_drain"]) == ["t2", "t3"]


def test_plain_value_read_only_by_the_read_uncommitted_drain_is_lost():
    view = {0: [(0, "a"), (1, "t0"), (5, "t4")], 1: COMMITTED_VIEW[1]}
    reads = {0: [(0, "a"), (1, "t0"), (5, "t4")], 1: COMMITTED_VIEW[1]}
    r = checker.check(txn_history(committed_view=view, group_reads=reads))
    assert r.counts() == {"lost": 1}
    assert r.of("lost")[0].data["value"] == "b"


def test_read_committed_skip_over_a_committed_record_is_a_skipped_poll():
    # the group member skips t4 at 0@5 (a committed value: it must return it)
    reads = {0: [(0, "a"), (1, "t0"), (7, "b")], 1: COMMITTED_VIEW[1]}
    r = checker.check(txn_history(group_reads=reads))
    assert r.counts() == {"skipped-poll": 1}
    assert r.of("skipped-poll")[0].data["must_return"] == [5]


def test_read_uncommitted_skip_over_an_aborted_record_is_a_skipped_poll():
    view = {0: [(0, "a"), (1, "t0"), (5, "t4"), (7, "b")], 1: UNCOMMITTED_VIEW[1]}
    r = checker.check(txn_history(uncommitted_view=view))
    assert r.counts() == {"skipped-poll": 1}
    a = r.of("skipped-poll")[0]
    assert a.data["consumer"] == "drain-uncommitted" and a.data["must_return"] == [3]


def test_skips_without_transactional_producers_are_always_anomalies():
    # the same log shapes without a transactional producer: every gap is a skip
    h = base()
    produce(h, "p", [("a", 0, 0), ("b", 0, 2)])
    drain_at(h, "drain", {0: [(0, "a"), (2, "b")]}, hw={0: 3})
    assert kinds(h) == {"skipped-poll": 1}


def test_transactional_producer_order_and_duplicates_are_checked():
    h = txn_history()
    txn_send(h, 5, "t5", 3, (1, 6))
    txn_send(h, 6, "t6", 3, (1, 5))   # acked below an earlier send of the same producer
    h.txn("t", 3, [5, 6], decision="commit", outcome="committed")
    h.poll("c1", [(1, 5, "t6"), (1, 6, "t5"), (1, 8, "t5")])
    r = checker.check(h)
    assert r.counts()["reorder"] == 1 and r.counts()["duplicate"] == 1
    assert "reorder-allowed" not in r.kinds() and "duplicate-allowed" not in r.kinds()


def test_last_stable_offset_below_the_high_watermark_at_the_end_is_an_open_transaction():
    h = txn_history()
    h.drain("drain", {0: 6, 1: 5}, {0: 6, 1: 5}, True)
    r = checker.check(h)
    assert r.counts() == {"drain-incomplete": 1}
    assert r.of("drain-incomplete")[0].data["below"] == {0: [6, 8]}


def test_transactional_producer_without_a_committed_transaction_is_no_progress():
    h = base()
    h.add_producer("t", idempotent=True, transactional=True)
    produce(h, "p", [("a", 0, 0)])
    txn_send(h, 0, "t0", 0, (0, 1))
    h.txn("t", 0, [0], decision="abort", outcome="aborted")
    drain_at(h, "drain", {0: [(0, "a")]}, hw={0: 3})
    r = checker.check(h)
    assert r.counts() == {"no-progress": 1}
    assert r.of("no-progress")[0].data["producer"] == "t"


@pytest.mark.parametrize("mutate, problem", [
    (lambda h: h.txn("t", 0, [0, 1], outcome="aborted"), "ended twice"),
    (lambda h: (h.send("t", 9, "t9", 0, txn=7), h.txn("t", 7, [8, 9], outcome="committed")),
     "its event names sends"),
])
def test_malformed_transactions(mutate, problem):
    h = txn_history()
    mutate(h)
    r = checker.check(h)
    assert any(problem in a.detail for a in r.of("malformed-history")), r.summary()
