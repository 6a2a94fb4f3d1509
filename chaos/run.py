"""Run chaos scenarios and report: python -m chaos.run [--quick|--long] [--seed N] [SCENARIO...]

Prints, per scenario, a line of the table (scenario, result, workload counts, anomalies with their
counts), then the first details of every anomaly.  The history of every scenario that did not pass
is written as JSON to --out (default target/chaos/), with the checker's report in it and the
server log next to it.  Exit status: 0 if every scenario passed, 1 otherwise, 2 on bad usage.

Results: PASS (no anomaly except allowed ones), FAIL (anomalies), ERROR (no anomaly, but the
harness itself had a problem, e.g. a workload process crashed: the run proves nothing).

  python -m chaos.run --check HISTORY.json   re-checks a saved history and prints its report.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

from chaos import checker, scenarios
from chaos.history import History

ROOT = Path(__file__).resolve().parent.parent
DETAILS_PER_KIND = 3


def log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def result_of(report: checker.Report, h: History) -> str:
    if not report.ok:
        return "FAIL"
    if h.meta.get("harness_errors"):
        return "ERROR"
    return "PASS"


def table(rows: list[dict]) -> str:
    headers = ["test", "result", "sends", "acked", "failed", "unknown", "read",
               "txns c/a/u", "faults", "time", "anomalies"]

    def txns(st):
        if "txns" not in st:
            return "-"
        return f"{st['txns_committed']}/{st['txns_aborted']}/{st['txns_unknown']}"

    lines = [[r["scenario"], r["result"], str(r["stats"].get("sends", "")),
              str(r["stats"].get("acked", "")), str(r["stats"].get("failed", "")),
              str(r["stats"].get("unknown", "")), str(r["stats"].get("records_read", "")),
              txns(r["stats"]), str(r["stats"].get("faults", "")), f"{r['seconds']:.0f}s",
              r["anomalies"]]
             for r in rows]
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(headers)]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*headers), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*l) for l in lines]
    return "\n".join(out)


def anomaly_matrix(rows: list[dict]) -> str:
    """Every anomaly kind (one line each) against every scenario: its count there."""
    names = [r["scenario"] for r in rows]
    kinds = list(checker.KINDS) + sorted({k for r in rows for k in r["counts"]} - set(checker.KINDS))
    labels = list(kinds)
    w0 = max(len(x) for x in labels + ["anomaly"])
    widths = [max(len(n), 3) for n in names]
    out = [" | ".join([f"{'anomaly':<{w0}}"] + [f"{n:>{w}}" for n, w in zip(names, widths)])]
    out.append("-+-".join(["-" * w0] + ["-" * w for w in widths]))
    for k, label in zip(kinds, labels):
        cells = [f"{r['counts'].get(k, 0):>{w}}" for r, w in zip(rows, widths)]
        out.append(" | ".join([f"{label:<{w0}}"] + cells))
    return "\n".join(out)


def print_details(report: checker.Report, h: History) -> None:
    shown: dict[str, int] = {}
    for a in report.anomalies:
        n = shown.get(a.kind, 0)
        if n < DETAILS_PER_KIND:
            print(f"    {a.kind}: {a.detail}")
        elif n == DETAILS_PER_KIND:
            print(f"    {a.kind}: ... ({report.counts()[a.kind] - DETAILS_PER_KIND} more in the JSON)")
        shown[a.kind] = n + 1
    for e in h.meta.get("harness_errors", []):
        print(f"    harness: {e}")


def save_failed(h: History, report: checker.Report, workdir: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = out / f"{stamp}-{h.meta['scenario']}-seed{h.meta['seed']}"
    data = h.to_json()
    data["report"] = report.to_json()
    Path(f"{base}.json").write_text(json.dumps(data, separators=(",", ":")) + "\n")
    logs = Path(f"{base}.logs")
    logs.mkdir(exist_ok=True)
    for f in workdir.glob("*.log"):
        shutil.copy2(f, logs / f.name)
    return Path(f"{base}.json")


def check_file(path: str) -> int:
    h = History.load(path)
    report = checker.check(h)
    print(f"{path}: {h.meta.get('scenario')} seed {h.meta.get('seed')}: "
          f"{'PASS' if report.ok else 'FAIL'}; {report.summary()}")
    print(f"  stats: {report.stats}")
    print_details(report, h)
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="chaos", description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="short runs, about 2.5 minutes for the default scenarios (default)")
    g.add_argument("--long", dest="mode", action="store_const", const="long",
                   help="long runs with many more faults (30+ minutes)")
    ap.add_argument("--seed", type=int, help="seed of the fault schedules (default: random, printed)")
    ap.add_argument("--out", default=str(ROOT / "target" / "chaos"),
                    help="where failed histories go (default target/chaos)")
    ap.add_argument("--keep-all", action="store_true", help="also save histories of passing runs")
    ap.add_argument("--binary", default=os.environ.get("CHRONIK_BIN",
                                                       str(ROOT / "target/release/chronik-server")))
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--check", metavar="HISTORY", help="check a saved history and exit")
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                    help="scenario names; a+b combines the faults of a and b")
    args = ap.parse_args(argv)
    mode = args.mode or "quick"

    if args.check:
        return check_file(args.check)
    if args.list:
        for s in scenarios.SCENARIOS.values():
            d = ", ".join(m for m in ("quick", "long") if s.name in scenarios.DEFAULT[m])
            d = f"default in {d}" if d else "not run by default"
            print(f"{s.name:<24} {s.description} ({d})")
        return 0
    try:
        chosen = [scenarios.resolve(n) for n in (args.scenarios or scenarios.DEFAULT[mode])]
    except KeyError as e:
        print(f"chaos: {e.args[0]}", file=sys.stderr)
        return 2
    binary = Path(args.binary)
    if not binary.is_file() or not os.access(binary, os.X_OK):
        print(f"chaos: server binary {binary} not found; run `cargo build --release`",
              file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    # SIGTERM (scripts/chaos.sh's cleanup) unwinds like Ctrl-C, so every process gets killed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    print(f"chaos: mode {mode}, seed {seed} (replay the schedules with --seed {seed}), "
          f"scenarios {', '.join(s.name for s in chosen)}", flush=True)
    rows = []
    for sc in chosen:
        print(f"\n== {sc.name}: {sc.description}", flush=True)
        t0 = time.monotonic()
        h, workdir = scenarios.run_scenario(sc, mode, seed, binary, log)
        try:
            report = checker.check(h)
            result = result_of(report, h)
            rows.append({"scenario": sc.name, "result": result, "stats": report.stats,
                         "anomalies": report.summary(), "counts": report.counts(),
                         "harness_errors": list(h.meta.get("harness_errors", [])),
                         "seconds": time.monotonic() - t0})
            print(f"  {result}: {report.summary()}; {report.stats}", flush=True)
            print_details(report, h)
            if result != "PASS" or args.keep_all:
                path = save_failed(h, report, workdir, Path(args.out))
                print(f"  history: {path}", flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nchaos results (mode {mode}, seed {seed}):")
    print(table(rows))
    print()
    print(anomaly_matrix(rows))
    failed = [r["scenario"] for r in rows if r["result"] != "PASS"]
    if failed:
        # Last, so that the end of a CI log says what went wrong in the harness too.
        for r in rows:
            for e in r["harness_errors"]:
                print(f"\nharness error in {r['scenario']}: {e}")
        print(f"\n{len(failed)} of {len(rows)} scenarios did not pass: {', '.join(failed)}; "
              f"histories in {args.out}")
        return 1
    print(f"\nall {len(rows)} scenarios passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
