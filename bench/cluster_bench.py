#!/usr/bin/env python3
"""Helpers of scripts/bench-cluster.sh (single node vs. a local cluster, in one run).

  sample   --out FILE --node LABEL=PID,HTTP_ADDR ... [--interval S]
           Until SIGTERM: every interval, append one JSON line with the wall time, each
           server's CPU seconds (/proc/PID/stat utime+stime), the machine's /proc/stat cpu line,
           the chronik_* Produce/fsync/Raft series of each node's /metrics and (every other
           tick) a digest of each node's /cluster (replicas and leaders per topic).
  produce  --bootstrap B --topic T --partitions P --replication-factor RF --seconds S
           [--rate R] [--linger-ms L] [--value-bytes N] --json FILE
           Produce-only measurement with confluent-kafka (librdkafka): creates T with the given
           replication factor, produces acks=all, idempotence off, round-robin over the
           partitions, as fast as possible or at a fixed rate, for S s (at a fixed rate: S x R
           messages, sending stopped after 2 x S s if the broker cannot keep up), then flushes.
           Latency = produce() call to delivery report (msg.latency()); deletes the topic
           afterwards. chronik-bench cannot do this on a cluster: it creates its topics with
           replication factor 1, and a cluster only serves topics hosted on every node.
  summary  --run-dir DIR [--json FILE]
           Reads DIR/<target>/{bench-max,bench-fixed,py-max,py-fixed,py-fixed-own}.json and samples.jsonl
           for the targets "single" and "cluster", prints the tables and ratios.

MB = 10^6 bytes. Only the standard library, except `produce` (confluent-kafka).
"""

from __future__ import annotations

import argparse
import calendar
import json
import math
import os
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path

MB = 1_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = ("single", "cluster")
KEEP = re.compile(
    r'^(chronik_raft_[a-z_]+(\{quantile="[0-9.]+"\})?'
    r'|chronik_(fsync_duration_seconds|group_commit_round_partitions)(_sum|_count)'
    r'|chronik_(produce|fetch)_bytes_total'
    r'|chronik_requests_total\{api="(Produce|Fetch)"\})$')


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of a sorted list (q in 0..100)."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def http_get(url: str, timeout: float = 2.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()
    except OSError:
        return None


# ---------------------------------------------------------------------------
# sample
# ---------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float | None:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(f[11]) + int(f[12])) / CLK_TCK


def all_procs_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (utime+stime) and name of every live process."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            head, rest = (d / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        f = rest.split()
        out[int(d.name)] = (head.split("(", 1)[1], (int(f[11]) + int(f[12])) / CLK_TCK)
    return out


def proc_stat() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]


def metrics(http: str) -> dict[str, float]:
    text = http_get(f"http://{http}/metrics")
    out: dict[str, float] = {}
    for line in (text or "").splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if KEEP.match(name):
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def cluster_digest(http: str) -> dict | None:
    text = http_get(f"http://{http}/cluster")
    if not text:
        return None
    try:
        c = json.loads(text)
    except ValueError:
        return None
    topics: dict[str, dict] = {}
    for p in c.get("partitions", []):
        if p["topic"].startswith("__"):
            continue
        t = topics.setdefault(p["topic"], {"hosted": 0, "rf": 0, "leaders": {}})
        t["hosted"] += 1
        t["rf"] = max(t["rf"], len(p.get("replicas") or []))
        leader = str(p.get("leader"))
        t["leaders"][leader] = t["leaders"].get(leader, 0) + 1
    return {"controller_leader": c.get("controller_leader"), "topics": topics}


def cmd_sample(a: argparse.Namespace) -> int:
    nodes = []
    for spec in a.node:
        label, rest = spec.split("=", 1)
        pid, http = rest.split(",", 1)
        nodes.append((label, int(pid), http))
    stop = False

    def on_term(_sig, _frm):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    tick = 0
    next_t = time.monotonic()
    ours = {os.getpid()} | {pid for _, pid, _ in nodes}
    prev = all_procs_cpu()
    with open(a.out, "a") as out:
        while not stop:
            rec = {"t": round(time.time(), 3), "stat": proc_stat(), "cpu": {}, "metrics": {}}
            # the busiest other processes since the last tick (this machine is shared)
            now = all_procs_cpu()
            deltas = sorted(((cpu - prev.get(pid, (name, cpu))[1], name, pid)
                             for pid, (name, cpu) in now.items() if pid not in ours), reverse=True)
            rec["top_other"] = [[name, pid, round(dc, 2)] for dc, name, pid in deltas[:3] if dc > 0.02]
            prev = now
            for label, pid, http in nodes:
                rec["cpu"][label] = proc_cpu_s(pid)
                rec["metrics"][label] = metrics(http)
                if a.cluster and tick % 2 == 0:
                    rec.setdefault("cluster", {})[label] = cluster_digest(http)
            out.write(json.dumps(rec, separators=(",", ":")) + "\n")
            out.flush()
            tick += 1
            next_t += a.interval
            # a periodic sampler: wait for the next tick (or SIGTERM)
            while not stop and time.monotonic() < next_t:
                time.sleep(min(0.05, max(0.0, next_t - time.monotonic())))
    return 0


# ---------------------------------------------------------------------------
# produce (confluent-kafka)
# ---------------------------------------------------------------------------


def cmd_produce(a: argparse.Namespace) -> int:
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    fut = admin.create_topics([NewTopic(a.topic, num_partitions=a.partitions,
                                        replication_factor=a.replication_factor)],
                              operation_timeout=30, request_timeout=30)
    fut[a.topic].result(timeout=60)
    deadline = time.perf_counter() + 60
    while True:  # bounded wait until every partition has a leader
        t = admin.list_topics(topic=a.topic, timeout=10).topics.get(a.topic)
        if t is not None and t.error is None and len(t.partitions) == a.partitions and all(
                p.leader >= 0 and p.error is None for p in t.partitions.values()):
            replicas = sorted(len(p.replicas) for p in t.partitions.values())
            leaders: dict[str, int] = {}
            for p in t.partitions.values():
                leaders[str(p.leader)] = leaders.get(str(p.leader), 0) + 1
            break
        if time.perf_counter() >= deadline:
            raise TimeoutError(f"topic {a.topic} never showed {a.partitions} partitions with leaders")
        admin.poll(0.1)  # the admin client's own event wait

    lat: list[float] = []
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            lat.append(msg.latency())

    p = ck.Producer({
        "bootstrap.servers": a.bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        "linger.ms": a.linger_ms,
        "batch.size": 1_000_000,
        "compression.type": "none",
        "message.timeout.ms": 120_000,
        "on_delivery": on_delivery,
    })
    p.list_topics(topic=a.topic, timeout=10)  # connect before the clock starts
    # one warm-up message per partition: every leader connection is up before the clock starts
    for i in range(a.partitions):
        p.produce(a.topic, b"w", partition=i)
    p.flush(30)
    lat.clear()
    value = os.urandom(a.value_bytes)
    produce, poll = p.produce, p.poll
    parts = a.partitions
    max_lag = 0.0
    cpu0 = sum(os.times()[:2])
    start_wall = time.time()
    start = time.perf_counter()
    i = 0
    if a.rate is None:
        end = start + a.seconds
        while True:
            if i % 1000 == 0 and time.perf_counter() >= end:
                break
            try:
                produce(a.topic, value, partition=i % parts)
                i += 1
            except BufferError:  # local queue full: serve delivery reports
                poll(0.01)
                continue
            poll(0)
    else:
        n = max(1, round(a.seconds * a.rate))
        give_up = start + 2 * a.seconds
        while i < n:
            now = time.perf_counter()
            if now >= give_up:  # the broker cannot keep up: stop sending, keep what was sent
                break
            due = min(n, int((now - start) * a.rate) + 1)
            if due > i:
                max_lag = max(max_lag, now - (start + i / a.rate))
            while i < due:
                try:
                    produce(a.topic, value, partition=i % parts)
                except BufferError:
                    break
                i += 1
            wait = start + i / a.rate - time.perf_counter()
            poll(max(wait, 0.001) if wait > 0 else 0)  # until the next send time
    sent_s = time.perf_counter() - start
    remaining = p.flush(120)
    elapsed = time.perf_counter() - start
    end_wall = time.time()
    client_cores = (sum(os.times()[:2]) - cpu0) / elapsed
    lat.sort()
    acked = len(lat)
    r = {
        "tool": "bench/cluster_bench.py produce (confluent-kafka %s, librdkafka %s)"
                % (ck.version()[0], ck.libversion()[0]),
        "topic": a.topic, "partitions": a.partitions,
        "replication_factor_requested": a.replication_factor,
        "replicas_per_partition": replicas, "leaders_by_node": leaders,
        "value_bytes": a.value_bytes, "linger_ms": a.linger_ms, "acks": "all",
        "rate": a.rate, "planned": None if a.rate is None else max(1, round(a.seconds * a.rate)),
        "sent": i, "acked": acked, "failed": len(errors) + remaining,
        "errors": errors[:5],
        "start_epoch": round(start_wall, 3), "end_epoch": round(end_wall, 3),
        "send_seconds": round(sent_s, 3), "seconds": round(elapsed, 3),
        "msgs_per_s": round(acked / elapsed), "mb_per_s": round(acked * a.value_bytes / elapsed / MB, 1),
        "max_schedule_lag_ms": None if a.rate is None else round(max_lag * 1e3, 1),
        "client_cores": round(client_cores, 2),
        "latency_ms": {q: (None if percentile(lat, v) is None else round(percentile(lat, v) * 1e3, 2))
                       for q, v in (("p50", 50), ("p99", 99), ("p99_9", 99.9), ("max", 100))},
    }
    admin.delete_topics([a.topic], operation_timeout=30)[a.topic].result(timeout=60)
    Path(a.json).write_text(json.dumps(r, indent=2) + "\n")
    log(f"  {a.topic}: RF {replicas[0]}-{replicas[-1]}, {acked} acked in {elapsed:.2f} s: "
        f"{r['msgs_per_s']} msg/s {r['mb_per_s']} MB/s, p50 {r['latency_ms']['p50']} ms "
        f"p99 {r['latency_ms']['p99']} ms, failed {r['failed']}")
    return 0 if r["failed"] == 0 else 3


# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------


def utc_to_epoch(s: str) -> float:
    return float(calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")))


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def phase_window(kind: str, r: dict) -> tuple[float, float]:
    """The steady part of a phase, in epoch seconds (start-up and flush edges left out)."""
    if kind == "bench":
        run = r["runs"][0]
        # started_utc: after topic creation, truncated to the second; the producers start after
        # the consumers' assignment and a warm-up message, so skip 2 s.
        s = utc_to_epoch(run["started_utc"])
        return s + 2.0, s + max(run["produce"]["seconds"], 2.5)
    return r["start_epoch"] + 1.0, r["start_epoch"] + max(r["send_seconds"], 1.5)


def window_stats(samples: list[dict], lo: float, hi: float) -> dict | None:
    inside = [s for s in samples if lo <= s["t"] <= hi]
    if len(inside) < 2:
        return None
    a, b = inside[0], inside[-1]
    dt = b["t"] - a["t"]
    d = [y - x for x, y in zip(a["stat"], b["stat"])]
    total = sum(d) or 1
    out = {"seconds": round(dt, 1), "samples": len(inside),
           "machine_busy_pct": round(100.0 * (total - d[3] - d[4]) / total, 1),
           "machine_iowait_pct": round(100.0 * d[4] / total, 1), "nodes": {}}
    for label in b["cpu"]:
        ca, cb = a["cpu"].get(label), b["cpu"].get(label)
        ma, mb = a["metrics"].get(label, {}), b["metrics"].get(label, {})

        def delta(k: str) -> float:
            return max(0.0, mb.get(k, 0.0) - ma.get(k, 0.0))

        def avg(base: str, scale: float = 1.0, nd: int = 3):
            c = delta(base + "_count")
            return None if c == 0 else round(delta(base + "_sum") / c * scale, nd)

        n = {
            "cores": None if ca is None or cb is None else round((cb - ca) / dt, 2),
            "produce_requests_per_s": round(delta('chronik_requests_total{api="Produce"}') / dt),
            "produce_mb_per_s": round(delta("chronik_produce_bytes_total") / dt / MB, 1),
            "fetch_requests_per_s": round(delta('chronik_requests_total{api="Fetch"}') / dt),
            "leader_partitions": mb.get("chronik_raft_leader_partitions"),
            "raft_fsync_rounds_per_s": round(delta("chronik_raft_fsync_round_requests_count") / dt),
            "raft_fsync_round_requests_avg": avg("chronik_raft_fsync_round_requests", 1, 1),
            "raft_fsync_round_ms_avg": avg("chronik_raft_fsync_duration_seconds", 1e3),
            "raft_appends_per_s": round(delta("chronik_raft_append_duration_seconds_count") / dt),
            "raft_append_ms_avg": avg("chronik_raft_append_duration_seconds", 1e3),
            "raft_append_ms_p99_rolling60s": None if 'chronik_raft_append_duration_seconds{quantile="0.99"}' not in mb
            else round(mb['chronik_raft_append_duration_seconds{quantile="0.99"}'] * 1e3, 3),
            "raft_fsync_round_requests_p99_rolling60s":
                mb.get('chronik_raft_fsync_round_requests{quantile="0.99"}'),
            "group_commit_fsyncs_per_s": round(delta("chronik_fsync_duration_seconds_count") / dt),
            "group_commit_fsync_ms_avg": avg("chronik_fsync_duration_seconds", 1e3),
            "group_commit_round_partitions_avg": avg("chronik_group_commit_round_partitions", 1, 1),
            "follower_lag_entries_max": mb.get("chronik_raft_follower_lag_entries_max"),
            "terms_sum_delta": delta("chronik_raft_terms_sum") if "chronik_raft_terms_sum" in mb else None,
        }
        out["nodes"][label] = n
    out["servers_cores"] = round(sum(n["cores"] or 0 for n in out["nodes"].values()), 2)
    out["machine_busy_cores"] = round((total - d[3] - d[4]) / total * len_cpus(), 2)
    tops: dict[str, float] = {}
    for smp in inside[1:]:
        for name, _pid, dc in smp.get("top_other", []):
            tops[name] = tops.get(name, 0.0) + dc
    out["top_other_cores"] = {k: round(v / dt, 2) for k, v in sorted(tops.items(), key=lambda kv: -kv[1])[:5]}
    return out


def len_cpus() -> int:
    return os.cpu_count() or 1


def topology(samples: list[dict], lo: float, hi: float) -> dict:
    """Replication factor and leaders of the bench topics seen during the phase (/cluster)."""
    seen: dict[str, dict] = {}
    for s in samples:
        if not (lo - 3 <= s["t"] <= hi + 3):
            continue
        for label, dig in (s.get("cluster") or {}).items():
            for name, t in ((dig or {}).get("topics") or {}).items():
                e = seen.setdefault(name, {"rf": 0, "hosted_by": {}, "leaders": {}})
                e["rf"] = max(e["rf"], t["rf"])
                e["hosted_by"][label] = max(e["hosted_by"].get(label, 0), t["hosted"])
                for k, v in t["leaders"].items():
                    e["leaders"][k] = max(e["leaders"].get(k, 0), v)
    return seen


def cmd_summary(a: argparse.Namespace) -> int:
    root = Path(a.run_dir)
    res: dict = {"run_dir": str(root), "targets": {}}
    for target in TARGETS:
        d = root / target
        samples = []
        try:
            samples = [json.loads(x) for x in (d / "samples.jsonl").read_text().splitlines() if x.strip()]
        except (OSError, ValueError):
            pass
        tres = {}
        for phase in ("bench-max", "bench-fixed", "py-max", "py-fixed", "py-fixed-own"):
            r = load(d / f"{phase}.json")
            if r is None:
                continue
            kind = phase.split("-")[0]  # bench or py
            lo, hi = phase_window(kind, r)
            if kind == "bench":
                run = r["runs"][0]
                pr = run["produce"]
                e2e = (run.get("consume_live") or {}).get("end_to_end") or {}
                row = {
                    "client": f"chronik-bench (librdkafka {r.get('librdkafka')})",
                    "msgs_per_s": pr["msgs_per_s"], "mb_per_s": pr["mb_per_s"],
                    "rate": run["spec"].get("rate"), "linger_ms": run["spec"].get("linger_ms"),
                    "p50_ms": pr["latency"].get("p50_ms"), "p99_ms": pr["latency"].get("p99_ms"),
                    "p999_ms": pr["latency"].get("p99_9_ms", pr["latency"].get("p999_ms")),
                    "max_ms": pr["latency"].get("max_ms"),
                    "e2e_p99_ms": e2e.get("p99_ms"),
                    "max_schedule_lag_ms": pr.get("max_schedule_lag_ms"),
                    "acked": pr["acked"], "failed": pr["failed"],
                    "live_consumed_complete": (run.get("consume_live") or {}).get("complete"),
                    "client_cores": run["cpu"].get("client_cores"),
                    "client_avg_batch_bytes": pr.get("client_avg_batch_bytes"),
                    "seconds": pr["seconds"],
                }
            else:
                row = {
                    "client": r["tool"], "msgs_per_s": r["msgs_per_s"], "mb_per_s": r["mb_per_s"],
                    "rate": r["rate"], "linger_ms": r["linger_ms"],
                    "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"],
                    "p999_ms": r["latency_ms"]["p99_9"], "max_ms": r["latency_ms"]["max"],
                    "max_schedule_lag_ms": r["max_schedule_lag_ms"],
                    "acked": r["acked"], "failed": r["failed"],
                    "planned": r.get("planned"), "sent": r["sent"], "client_cores": r.get("client_cores"),
                    "replicas_per_partition": r["replicas_per_partition"],
                    "leaders_by_node": r["leaders_by_node"], "seconds": r["seconds"],
                }
            row["window"] = [round(lo, 1), round(hi, 1)]
            row["servers"] = window_stats(samples, lo, hi)
            if row["servers"] and row.get("client_cores") is not None:
                # the machine's busy cores that neither the servers nor the client used
                row["others_cores"] = round(row["servers"]["machine_busy_cores"]
                                            - row["servers"]["servers_cores"] - row["client_cores"], 2)
            if target == "cluster":
                topo = topology(samples, lo, hi)
                row["topology"] = topo
                if kind == "bench" and topo:
                    row["replicas_per_partition"] = max(t["rf"] for t in topo.values())
            tres[phase] = row
        res["targets"][target] = tres
    s, c = res["targets"].get("single", {}), res["targets"].get("cluster", {})
    ratios = {}
    if s.get("bench-max") and s.get("py-max") and s["bench-max"]["mb_per_s"]:
        ratios["single_python_max_over_chronik_bench_max"] = round(
            s["py-max"]["mb_per_s"] / s["bench-max"]["mb_per_s"], 3)
    for kind in ("bench", "py"):
        sm, cm = s.get(f"{kind}-max"), c.get(f"{kind}-max")
        if sm and cm and sm["mb_per_s"]:
            ratios[f"{kind}_max_throughput_cluster_over_single"] = round(cm["mb_per_s"] / sm["mb_per_s"], 3)
        sf, cf = s.get(f"{kind}-fixed"), c.get(f"{kind}-fixed")
        if sf and cf:
            ratios[f"{kind}_fixed_p50_ms_single_cluster"] = [sf["p50_ms"], cf["p50_ms"]]
            ratios[f"{kind}_fixed_p99_ms_single_cluster"] = [sf["p99_ms"], cf["p99_ms"]]
            if sf["p99_ms"]:
                ratios[f"{kind}_fixed_p99_cluster_over_single"] = round(cf["p99_ms"] / sf["p99_ms"], 2)
    own = c.get("py-fixed-own")
    if own:
        ratios["py_cluster_at_own_half_max_p50_p99_ms"] = [own["p50_ms"], own["p99_ms"]]
        if s.get("py-fixed") and s["py-fixed"]["p99_ms"]:
            ratios["py_cluster_own_rate_p99_over_single_fixed_p99"] = round(own["p99_ms"] / s["py-fixed"]["p99_ms"], 2)
    res["ratios"] = ratios

    # --- print ---
    print("\n## Single node vs cluster (same run)\n")
    print("| target | client | RF | load | msg/s | MB/s | p50 ms | p99 ms | p99.9 ms | max lag ms | server cores (per node) | client cores | machine busy % (others, cores) |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for target in TARGETS:
        for phase, row in res["targets"].get(target, {}).items():
            srv = row.get("servers") or {}
            per = ", ".join(f"{k} {v['cores']}" for k, v in (srv.get("nodes") or {}).items())
            rf = row.get("replicas_per_partition")
            if isinstance(rf, list):
                rf = f"{rf[0]}" if rf[0] == rf[-1] else f"{rf[0]}-{rf[-1]}"
            load_s = "max" if not row.get("rate") else f"fixed {row['rate']:.0f}/s, linger {row['linger_ms']:g}"
            if row.get("planned") and row.get("sent", 0) < row["planned"]:
                load_s += f" (sent {row['sent']:,} of {row['planned']:,}: stopped at 2x the duration)"
            print(f"| {target} | {'chronik-bench' if phase.startswith('bench') else 'Python'} | "
                  f"{rf if rf is not None else (1 if target == 'single' else '?')} | {load_s} | "
                  f"{row['msgs_per_s']:,.0f} | {row['mb_per_s']} | {row['p50_ms']} | {row['p99_ms']} | "
                  f"{row['p999_ms']} | {row.get('max_schedule_lag_ms') if row.get('max_schedule_lag_ms') is not None else '-'} | "
                  f"{srv.get('servers_cores', '?')} ({per}) | {row.get('client_cores') if row.get('client_cores') is not None else '-'} | "
                  f"{srv.get('machine_busy_pct', '?')} ({row.get('others_cores', '?')}) |")
    print("\nServer counters per phase (steady window; rates per second; Raft averages from _sum/_count deltas):\n")
    print("| target | phase | node | cores | leaders | Produce req/s | produce MB/s | raft fsync rounds/s | requests/round | round ms | raft appends/s | append ms avg | append p99 ms (60 s) | group-commit fsyncs/s | fsync ms |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for target in TARGETS:
        for phase, row in res["targets"].get(target, {}).items():
            for node, n in ((row.get("servers") or {}).get("nodes") or {}).items():
                def f(k):
                    v = n.get(k)
                    return "-" if v is None else v
                print(f"| {target} | {phase} | {node} | {f('cores')} | {f('leader_partitions')} | "
                      f"{f('produce_requests_per_s')} | {f('produce_mb_per_s')} | {f('raft_fsync_rounds_per_s')} | "
                      f"{f('raft_fsync_round_requests_avg')} | {f('raft_fsync_round_ms_avg')} | "
                      f"{f('raft_appends_per_s')} | {f('raft_append_ms_avg')} | {f('raft_append_ms_p99_rolling60s')} | "
                      f"{f('group_commit_fsyncs_per_s')} | {f('group_commit_fsync_ms_avg')} |")
    print("\nRatios (cluster ÷ single, this run):")
    for k, v in ratios.items():
        print(f"  {k}: {v}")
    for target in TARGETS:
        for phase, row in res["targets"].get(target, {}).items():
            top = (row.get("servers") or {}).get("top_other_cores")
            if top:
                print(f"  busiest other processes during {target} {phase} (cores): {top}")
    for phase, row in c.items():
        if row.get("topology"):
            print(f"  topology during cluster {phase}: " + "; ".join(
                f"{t}: RF {e['rf']}, leaders {e['leaders']}" for t, e in row["topology"].items()))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"\nsummary JSON: {a.json}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--out", required=True)
    s.add_argument("--node", action="append", required=True, help="LABEL=PID,HOST:HTTP_PORT")
    s.add_argument("--interval", type=float, default=1.0)
    s.add_argument("--cluster", action="store_true", help="also digest /cluster")
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=16)
    p.add_argument("--replication-factor", type=int, required=True,
                   help="explicit: Chronik maps -1 to its configured default (1), also in a cluster")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rate", type=float)
    p.add_argument("--linger-ms", type=float, default=5.0)
    p.add_argument("--value-bytes", type=int, default=1024)
    p.add_argument("--json", required=True)
    m = sub.add_parser("summary")
    m.add_argument("--run-dir", required=True)
    m.add_argument("--json")
    a = ap.parse_args()
    return {"sample": cmd_sample, "produce": cmd_produce, "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
