"""kcat scenarios of Chronik's compatibility suite: python3 kcat_scenarios.py BOOTSTRAP [NAME...]

Debian's packaged kcat (kcat 1.7.1 on bookworm) links Debian's librdkafka (2.0.2 on bookworm),
older than the librdkafka of compat/librdkafka.py and stricter about flexible-version (tagged
field) encodings. kcat has no admin commands and no transactions. Standard library only; run by
`python3 -m compat.clients --kcat`. Prints progress on stderr and, last, one JSON line on stdout:
[{feature, scenario, state, detail, seconds}, ...].
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

BOOTSTRAP = ""
SCENARIOS: list = []


def scenario(feature: str, name: str):
    def deco(fn):
        SCENARIOS.append((feature, name, fn))
        return fn
    return deco


def uid() -> str:
    return uuid.uuid4().hex[:8]


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(f"check failed: {msg}")


def kcat(*args: str, stdin: str | None = None, timeout: float = 60.0) -> str:
    cmd = ["kcat", "-b", BOOTSTRAP, "-X", "broker.address.family=v4", *args]
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-600:]}")
    errs = [l for l in p.stderr.splitlines() if "ERROR" in l or "FAIL" in l]
    check(not errs, f"{' '.join(args)}: errors on stderr: {errs[:3]}")
    return p.stdout


def consume_json(topic: str, *extra: str) -> list[dict]:
    out = kcat("-C", "-t", topic, "-o", "beginning", "-e", "-J", *extra)
    return [json.loads(l) for l in out.splitlines() if l.strip()]


@scenario("metadata", "metadata listing (-L -J)")
def metadata():
    topic = f"kcat-md-{uid()}"
    kcat("-P", "-t", topic, stdin="x\n")
    md = json.loads(kcat("-L", "-J", "-t", topic))
    check(len(md["brokers"]) == 1, f"one broker: {md['brokers']}")
    t = md["topics"][0]
    check(t["topic"] == topic and not t.get("error") and len(t["partitions"]) >= 1, f"topic metadata {t}")


@scenario("produce", "produce keys and headers (-P -K -H), consume (-C -J)")
def produce():
    topic = f"kcat-produce-{uid()}"
    lines = "".join(f"k{i % 3}:v{i}\n" for i in range(50))
    kcat("-P", "-t", topic, "-K:", "-H", "h=x", "-X", "acks=all", stdin=lines)
    got = consume_json(topic)
    check([m["payload"] for m in got] == [f"v{i}" for i in range(50)], "50 values in order")
    check(all(m["key"] == f"k{i % 3}" for i, m in enumerate(got)), "keys")
    check(all(m.get("headers") == ["h", "x"] for m in got), f"headers: {got[0].get('headers')}")
    check([m["offset"] for m in got] == list(range(50)), "offsets 0..49")


for _codec in ("gzip", "snappy", "lz4", "zstd"):
    def _make(codec: str):
        def produce_compressed():
            topic = f"kcat-{codec}-{uid()}"
            lines = "".join(f"{codec}-{i}-" * 20 + "\n" for i in range(200))
            kcat("-P", "-t", topic, "-z", codec, "-X", "linger.ms=50", stdin=lines)
            got = consume_json(topic)
            check([m["payload"] for m in got] == [f"{codec}-{i}-" * 20 for i in range(200)],
                  f"200 values in order (got {len(got)})")
        return produce_compressed
    scenario(f"compression:{_codec}", f"produce {_codec}-compressed (-z {_codec}), consume")(_make(_codec))


@scenario("idempotence", "idempotent producer (-X enable.idempotence=true)")
def idempotent():
    topic = f"kcat-idem-{uid()}"
    lines = "".join(f"{i}\n" for i in range(500))
    kcat("-P", "-t", topic, "-p", "0", "-X", "enable.idempotence=true", stdin=lines)
    got = consume_json(topic)
    check([int(m["payload"]) for m in got] == list(range(500)), "500 values in order, once each")


@scenario("fetch", "consume from an offset, a negative offset, and by timestamp (-o, -o s@)")
def fetch_offsets():
    topic = f"kcat-fetch-{uid()}"
    kcat("-P", "-t", topic, "-p", "0", stdin="".join(f"{i}\n" for i in range(20)))
    got = consume_json(topic)
    check(len(got) == 20, f"20 records, got {len(got)}")
    mid = kcat("-C", "-t", topic, "-p", "0", "-o", "15", "-e", "-J")
    check([json.loads(l)["offset"] for l in mid.splitlines()] == list(range(15, 20)), "from offset 15")
    tail = kcat("-C", "-t", topic, "-p", "0", "-o", "-3", "-e", "-J")
    check([json.loads(l)["offset"] for l in tail.splitlines()] == [17, 18, 19], "last 3 (-o -3)")
    ts = got[10]["ts"]
    by_ts = kcat("-C", "-t", topic, "-p", "0", "-o", f"s@{ts}", "-e", "-J")
    offs = [json.loads(l)["offset"] for l in by_ts.splitlines()]
    check(offs and offs[0] <= 10 and offs[-1] == 19, f"from timestamp of offset 10: {offs[:3]}")


@scenario("groups", "balanced consumer group (-G) with commits; rejoin reads only new records")
def group():
    topic = f"kcat-group-{uid()}"
    group_id = f"kcat-g-{uid()}"
    kcat("-P", "-t", topic, stdin="".join(f"{i}\n" for i in range(100)))
    conf = ["-X", "auto.offset.reset=earliest", "-X", "enable.auto.commit=true",
            "-X", "auto.commit.interval.ms=100", "-X", "session.timeout.ms=6000"]
    out = kcat("-G", group_id, topic, "-e", "-J", *conf, timeout=90)
    vals = sorted(int(json.loads(l)["payload"]) for l in out.splitlines() if l.strip())
    check(vals == list(range(100)), f"group read 100 records, got {len(vals)}")
    kcat("-P", "-t", topic, stdin="after\n")
    out = kcat("-G", group_id, topic, "-e", "-J", *conf, timeout=90)
    vals = [json.loads(l)["payload"] for l in out.splitlines() if l.strip()]
    check(vals == ["after"], f"rejoined group reads only the new record: {vals[:5]}")


def main(only: list[str]) -> list[dict]:
    results = []
    for feature, name, fn in SCENARIOS:
        if only and not any(feature.startswith(o) or o in name for o in only):
            continue
        t0 = time.monotonic()
        state, detail = "PASSED", ""
        try:
            fn()
        except (AssertionError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
            state, detail = "FAILED", f"{type(e).__name__}: {e}"
        secs = time.monotonic() - t0
        print(f"kcat {feature} | {name} | {state} {detail} ({secs:.1f}s)", file=sys.stderr, flush=True)
        results.append({"feature": feature, "scenario": name, "state": state, "detail": detail,
                        "seconds": round(secs, 2)})
    return results


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    BOOTSTRAP = sys.argv[1]
    print(json.dumps(main(sys.argv[2:])), flush=True)
