"""The generated parts of docs/compatibility.md, from the results of the compatibility suites.

    python3 -m compat.report            print the generated sections
    python3 -m compat.report --write    rewrite them in docs/compatibility.md (between the
                                        "<!-- BEGIN generated:NAME -->" / "<!-- END generated:NAME -->"
                                        markers; everything else in the file is left alone)

Reads target/compat/librdkafka-results.json (the full run; -idempotent for the idempotent run)
and target/compat/{aiokafka,kafkajs,kcat}-results.json. scripts/compat.sh --update-docs runs it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from compat import common
from compat.librdkafka_expectations import NEEDS_THREE_BROKERS

DOC = common.ROOT / "docs" / "compatibility.md"
CLIENTS = ("aiokafka", "kafkajs", "kcat")
FEATURES = ("produce", "fetch", "groups", "admin", "idempotence", "transactions",
            "compression:gzip", "compression:snappy", "compression:lz4", "compression:zstd")
# Which librdkafka tests (by number) stand for which feature in the matrix.
LIBRDKAFKA_FEATURES = {
    "produce": "0001 0002 0003 0005 0007 0008 0011 0013 0021 0039 0048 0055 0064 0068 0070 0073 "
               "0075 0076 0084 0085 0086 0088 0110 0114 0125",
    "fetch": "0012 0014 0015 0022 0026 0029 0031 0034 0036 0038 0040 0041 0049 0054 0059 0067 "
             "0082 0093 0127 0137",
    "groups": "0018 0019 0020 0030 0033 0045 0050 0051 0056 0060 0061 0069 0083 0089 0091 0099 "
              "0102 0112 0113 0118 0122 0130 0132 0140 0153",
    "admin": "0035 0042 0044 0057 0063 0081",
    "idempotence": "0090 0094",
    "transactions": "0098 0103 0129",
    "compression:gzip": "0017", "compression:snappy": "0017", "compression:lz4": "0017",
    "compression:zstd": "0017",
}
GOOD = {"PASSED"}
BAD = {"FAILED", "FLAKY", "XFAIL", "XPASS"}


def load(name: str) -> dict | None:
    try:
        return json.loads((common.TARGET / name).read_text())
    except (OSError, ValueError):
        return None


def esc(text: str) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def cell(states: list[str], failing: list[str] | None = None) -> str:
    ran = [s for s in states if s in GOOD | BAD]
    if not ran:
        return "n/a"
    ok = sum(s in GOOD for s in ran)
    if ok == len(ran):
        return f"pass ({ok}/{len(ran)})" if len(ran) > 1 else "pass"
    if all(s == "XFAIL" for s in ran if s not in GOOD) and ok == 0:
        return "fail (expected)"
    which = ""
    if failing:
        counts: dict[str, int] = {}
        for n in failing:
            counts[n] = counts.get(n, 0) + 1
        which = " (" + ", ".join(f"{n}" + (f" x{c}" if c > 1 else "") for n, c in counts.items()) + ")"
    return (f"**{ok}/{len(ran)} pass**" if ok else "**fail**") + which


def matrix(lrk: dict | None, idem: dict | None, clients: dict[str, dict]) -> str:
    head = "| client | " + " | ".join(f.replace("compression:", "") for f in FEATURES) + " |"
    sep = "|---" * (len(FEATURES) + 1) + "|"
    rows = [head, sep]
    if lrk:
        tests = lrk["tests"]
        cells = []
        for f in FEATURES:
            nums = set(LIBRDKAFKA_FEATURES[f].split())
            states = [t["state"] for t in tests if t["number"] in nums]
            failing = [t["number"] for t in tests if t["number"] in nums and t["state"] in BAD]
            if f == "idempotence" and idem:
                c = idem["counts"]
                ran = c.get("PASSED", 0) + c.get("FAILED", 0)
                cells.append(f"{cell(states, failing)}; whole suite idempotent: "
                             f"{c.get('PASSED', 0)}/{ran} pass" if ran else cell(states, failing))
            else:
                cells.append(cell(states, failing))
        rows.append(f"| librdkafka {lrk['librdkafka_version']} (its test suite) | " +
                    " | ".join(cells) + " |")
    for c in CLIENTS:
        run = clients.get(c)
        if not run:
            continue
        cells = []
        for f in FEATURES:
            states = [r["state"] for r in run["results"] if r["feature"] == f]
            cells.append(cell(states))
        rows.append(f"| {esc(run['version'])} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def versions(lrk: dict | None, idem: dict | None, clients: dict[str, dict]) -> str:
    lines = []
    if lrk:
        lines.append(f"- librdkafka {lrk['librdkafka_version']} test suite: run {lrk['date']} against "
                     f"Chronik {lrk['chronik_commit']}, {lrk['seconds']:.0f} s, "
                     f"{'quick' if lrk['quick'] else 'full'} mode, TEST_KAFKA_VERSION "
                     f"{lrk['kafka_version']}")
    if idem:
        lines.append(f"- librdkafka {idem['librdkafka_version']} test suite, every producer "
                     f"idempotent (`--idempotent`): run {idem['date']} against Chronik "
                     f"{idem['chronik_commit']}, {idem['seconds']:.0f} s")
    for c in CLIENTS:
        run = clients.get(c)
        if run:
            lines.append(f"- {run['version']}: run {run['date']} against Chronik "
                         f"{run['chronik_commit']}, {run['seconds']:.0f} s")
    return "\n".join(lines)


def pass_rate(c: dict) -> str:
    """Passed among the tests that ran and did not skip themselves."""
    ran = sum(c.get(k, 0) for k in ("PASSED", "FAILED", "FLAKY", "XFAIL", "XPASS"))
    return f"{c.get('PASSED', 0)}/{ran} = {100.0 * c.get('PASSED', 0) / ran:.1f}%" if ran else "n/a"


def totals(c: dict) -> str:
    return (f"Totals: {c.get('PASSED', 0)} passed, {c.get('FAILED', 0)} failed, "
            f"{c.get('FLAKY', 0)} flaky, {c.get('XFAIL', 0)} failed as expected, "
            f"{c.get('XPASS', 0)} passed unexpectedly, {c.get('SKIPPED', 0)} skipped by the test "
            f"itself, {c.get('NOT_RUN', 0)} not run. Pass rate of the tests run: {pass_rate(c)}.")


def three_nodes_section(run: dict | None) -> str:
    if not run:
        return "_No results: run `scripts/compat.sh --librdkafka --brokers 3`._"
    out = [f"Run {run['date']} against Chronik {run['chronik_commit']}, {run['seconds']:.0f} s, "
           f"{'quick' if run['quick'] else 'full'} mode: every test number against its own "
           f"three-node cluster.", "", totals(run["counts"]), ""]
    bad = [t for t in run["tests"] if t["state"] in BAD]
    if bad:
        out += ["| test | result | reason | failure as reported |", "|---|---|---|---|"]
        for t in bad:
            why = t.get("expected") or "**unexpected: investigate**"
            out.append(f"| {t['name']} | {t['state']} | {esc(why)} | {esc(t.get('reason', ''))[:300]} |")
        out.append("")
    three = [t["name"] for t in run["tests"] if t["state"] == "PASSED"
             and t["name"].split("[")[0] in NEEDS_THREE_BROKERS]
    if three:
        out.append("Tests that need three brokers and pass: " + ", ".join(f"`{n}`" for n in three))
    return "\n".join(out).rstrip()


def librdkafka_section(lrk: dict | None, idem: dict | None) -> str:
    if not lrk:
        return "_No results: run `scripts/compat.sh --librdkafka`._"
    tests = lrk["tests"]
    c = lrk["counts"]
    out = [totals(c), ""]
    bad = [t for t in tests if t["state"] in BAD]
    if bad:
        out += ["**Failing tests and why** (the gaps are detailed above):", "",
                "| test | result | reason | failure as reported |", "|---|---|---|---|"]
        for t in bad:
            why = t.get("expected") or "**unexpected: investigate**"
            out.append(f"| {t['name']} | {t['state']} | {esc(why)} | {esc(t.get('reason', ''))[:300]} |")
        out.append("")
    passed = [t["name"] for t in tests if t["state"] == "PASSED"]
    out += [f"**Passing tests** ({len(passed)}): " + ", ".join(f"`{n}`" for n in passed), ""]
    skipped = [t for t in tests if t["state"] == "SKIPPED"]
    if skipped:
        out += ["**Skipped by the test itself:**", ""]
        out += [f"- `{t['name']}`: {esc(t.get('reason', ''))}" for t in skipped]
        out.append("")
    not_run = [t for t in tests if t["state"] == "NOT_RUN"]
    by_reason: dict[str, list[str]] = {}
    for t in not_run:
        by_reason.setdefault(t.get("reason", ""), []).append(t["name"])
    out += ["**Not run, and why:**", ""]
    for reason, names in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len(names) > 8:
            out.append(f"- {esc(reason)}: {len(names)} tests ({', '.join(names[:4])}, ...)")
        else:
            out.append(f"- {esc(reason)}: " + ", ".join(f"`{n}`" for n in names))
    if idem:
        ic = idem["counts"]
        out += ["", f"**Idempotent run** (`--idempotent`, librdkafka's `-P`: every producer of every "
                f"test idempotent): {ic.get('PASSED', 0)} passed, {ic.get('FAILED', 0)} failed, "
                f"{ic.get('XFAIL', 0)} failed as expected, {ic.get('SKIPPED', 0)} skipped."]
        ibad = [t for t in idem["tests"] if t["state"] in BAD]
        lbad = {t["name"] for t in bad}
        extra = [t for t in ibad if t["name"] not in lbad]
        if extra:
            out += ["Failing only in the idempotent run:", ""]
            out += [f"- `{t['name']}` ({t['state']}): {esc(t.get('expected') or t.get('reason', ''))[:300]}"
                    for t in extra]
        else:
            out.append("No test fails in the idempotent run that does not fail in the default run.")
    return "\n".join(out)


def clients_section(clients: dict[str, dict]) -> str:
    out = []
    for c in CLIENTS:
        run = clients.get(c)
        if not run:
            out += [f"_{c}: no results: run `scripts/compat.sh --{c}`._", ""]
            continue
        out += [f"**{esc(run['version'])}**" + (f" (error: {esc(run['error'])})" if run.get("error") else ""),
                "", "| feature | scenario | result | detail |", "|---|---|---|---|"]
        for r in run["results"]:
            why = r.get("expected", "") if r["state"] in ("XFAIL", "XPASS") else r.get("detail", "")
            out.append(f"| {r['feature']} | {esc(r['scenario'])} | {r['state']} | {esc(why)[:300]} |")
        out.append("")
    return "\n".join(out).rstrip()


def coverage_section(lrk: dict | None, clients: dict[str, dict]) -> str:
    if not lrk or "advertised_apis" not in lrk:
        return "_No results._"
    adv = lrk["advertised_apis"]
    per_test: dict[str, int] = {}
    for t in lrk["tests"]:
        for api, n in (t.get("apis") or {}).items():
            if n > 0:
                per_test[api] = per_test.get(api, 0) + 1
    ci = set()
    try:
        from compat.librdkafka_expectations import CI_TESTS
        ci = set(CI_TESTS)
    except ImportError:
        pass
    ci_apis: set[str] = set()
    for t in lrk["tests"]:
        if t["number"] in ci or t["name"] in ci or t["name"].split("[")[0] in ci:
            ci_apis |= {a for a, n in (t.get("apis") or {}).items() if n > 0}
    head = "| API | versions | librdkafka tests using it | CI subset | " + \
           " | ".join(c for c in CLIENTS if c in clients) + " |"
    rows = [head, "|---" * (4 + sum(c in clients for c in CLIENTS)) + "|"]
    for api, (lo, hi) in sorted(adv.items(), key=lambda kv: kv[0]):
        cols = [api, f"{lo}-{hi}", str(per_test.get(api, 0)), "yes" if api in ci_apis else "**no**"]
        for c in CLIENTS:
            if c in clients:
                cols.append("yes" if clients[c].get("apis", {}).get(api) else "-")
        rows.append("| " + " | ".join(cols) + " |")
    return "\n".join(rows)


def sections() -> dict[str, str]:
    three = load("librdkafka-results-3nodes.json")
    lrk = load("librdkafka-results.json")
    idem = load("librdkafka-results-idempotent.json")
    clients = {c: r for c in CLIENTS if (r := load(f"{c}-results.json"))}
    return {
        "versions": versions(lrk, idem, clients),
        "matrix": matrix(lrk, idem, clients),
        "librdkafka": librdkafka_section(lrk, idem),
        "librdkafka-3nodes": three_nodes_section(three),
        "clients": clients_section(clients),
        "coverage": coverage_section(lrk, clients),
    }


def write(doc: Path = DOC) -> list[str]:
    text = doc.read_text()
    missing = []
    for name, body in sections().items():
        pat = re.compile(rf"(<!-- BEGIN generated:{name} -->\n).*?(<!-- END generated:{name} -->)", re.S)
        if not pat.search(text):
            missing.append(name)
            continue
        text = pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    doc.write_text(text)
    return missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="compat.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"rewrite the generated parts of {DOC}")
    args = ap.parse_args(argv)
    if args.write:
        missing = write()
        if missing:
            print(f"markers missing in {DOC}: {', '.join(missing)}", file=sys.stderr)
            return 1
        print(f"updated {DOC}")
        return 0
    for name, body in sections().items():
        print(f"<!-- {name} -->\n{body}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
