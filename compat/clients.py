"""Other clients against a real chronik-server: aiokafka, kafkajs and Debian's kcat.

    python3 -m compat.clients [--aiokafka] [--kafkajs] [--kcat] [--filter WORD]...

(default: all three). Each client gets its own chronik-server (private copy of the binary, fresh
data dir, free ports, Kafka's default broker settings) and runs its scenario file
(compat/<client>_scenarios.*): produce (acks, keys, headers), every compression codec the client
can use, idempotent producer, consumer group with commits, admin calls, transactions. Each
scenario checks what it reads back.

Client installs, pinned and cached (redone only when the pins change):
  aiokafka  compat/requirements.txt       -> target/compat/venv-aiokafka (python3 -m venv + pip)
  kafkajs   compat/package(-lock).json    -> target/compat/node (npm ci; needs node and npm)
  kcat      Debian's package (apt-get install kcat; scripts/compat.sh installs it when missing)

Results: PASSED, FAILED, XFAIL (failed as EXPECTED_FAIL below says, for a known Chronik gap),
XPASS; ERROR when the client cannot be set up. Prints a table, writes
target/compat/<client>-results.json (-filtered.json with --filter). Exit status 1 if any
scenario FAILED (or XPASSed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from compat import common

COMPAT = common.ROOT / "compat"
# (client or "*", feature, text in the scenario's name or "") -> why it is expected to fail.
# docs/compatibility.md ("Chronik gaps found") has the details.
EXPECTED_FAIL: dict[tuple[str, str, str], str] = {}
SCENARIO_TIMEOUT_S = 900


def _sha(*paths: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


# --- client installs ----------------------------------------------------------------------

def setup_aiokafka() -> tuple[list[str], str]:
    venv = common.TARGET / "venv-aiokafka"
    reqs = COMPAT / "requirements.txt"
    py = venv / "bin" / "python"
    if venv.exists() and subprocess.run([str(py), "-c", "import sys"], capture_output=True).returncode:
        shutil.rmtree(venv)
    if not py.exists():
        base = shutil.which("python3.11") or shutil.which("python3") or sys.executable
        common.log(f"creating {venv}")
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    stamp = venv / ".requirements.sha256"
    want = _sha(reqs, extra=subprocess.run([str(py), "-V"], capture_output=True, text=True).stdout)
    if not stamp.exists() or stamp.read_text().strip() != want:
        common.log("installing aiokafka (compat/requirements.txt)")
        stamp.unlink(missing_ok=True)
        subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                        "-q", "-r", str(reqs)], check=True)
        stamp.write_text(want + "\n")
    version = subprocess.run([str(py), "-c", "import aiokafka; print(aiokafka.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return [str(py), str(COMPAT / "aiokafka_scenarios.py")], f"aiokafka {version}"


def setup_kafkajs() -> tuple[list[str], str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise RuntimeError("node and npm are needed for the kafkajs scenarios")
    d = common.TARGET / "node"
    d.mkdir(parents=True, exist_ok=True)
    pkg, lock = COMPAT / "package.json", COMPAT / "package-lock.json"
    node_v = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    want = _sha(pkg, lock, extra=node_v)
    stamp = d / ".package-lock.sha256"
    if not stamp.exists() or stamp.read_text().strip() != want or not (d / "node_modules").is_dir():
        common.log("installing kafkajs (compat/package-lock.json, npm ci)")
        stamp.unlink(missing_ok=True)
        shutil.copy2(pkg, d / "package.json")
        shutil.copy2(lock, d / "package-lock.json")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=d, check=True)
        stamp.write_text(want + "\n")
    script = d / "kafkajs_scenarios.js"  # next to its node_modules, so require() finds them
    shutil.copy2(COMPAT / "kafkajs_scenarios.js", script)
    version = json.loads((d / "node_modules" / "kafkajs" / "package.json").read_text())["version"]
    return [node, str(script)], f"kafkajs {version} (node {node_v})"


def setup_kcat() -> tuple[list[str], str]:
    if not shutil.which("kcat"):
        raise RuntimeError("kcat is not installed (apt-get install kcat)")
    out = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    version = " ".join(l.strip() for l in out.splitlines() if "version" in l.lower())[:120]
    pkg = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "kcat"], capture_output=True,
                         text=True).stdout.strip()
    lib = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "librdkafka1"], capture_output=True,
                         text=True).stdout.strip()
    desc = f"kcat {pkg or '?'} (Debian), librdkafka {lib or '?'}" if pkg else f"kcat: {version}"
    return [sys.executable, str(COMPAT / "kcat_scenarios.py")], desc


CLIENTS = {"aiokafka": setup_aiokafka, "kafkajs": setup_kafkajs, "kcat": setup_kcat}


# --- running --------------------------------------------------------------------------------

def expected(client: str, feature: str, scenario: str) -> str:
    for (c, f, text), why in EXPECTED_FAIL.items():
        if c in (client, "*") and f == feature and text in scenario:
            return why
    return ""


def run_client(client: str, filters: list[str], out_dir: Path) -> dict:
    t0 = time.monotonic()
    try:
        cmd, version = CLIENTS[client]()
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        return {"client": client, "version": "", "results": [], "error": f"setup failed: {e}",
                "seconds": 0}
    wdir = out_dir / client
    srv = common.Server(wdir, name="chronik")
    results: list[dict] = []
    error = ""
    apis: dict[str, int] = {}
    try:
        srv.start()
        common.log(f"{version}: scenarios against {srv.bootstrap}")
        with open(wdir / f"{client}.stderr.log", "wb") as err:
            p = subprocess.run(common.pdeathsig(cmd + [srv.bootstrap] + filters), stdout=subprocess.PIPE,
                               stderr=err, timeout=SCENARIO_TIMEOUT_S, cwd=wdir)
        lines = p.stdout.decode(errors="replace").strip().splitlines()
        try:
            results = json.loads(lines[-1]) if lines else []
        except ValueError:
            results = []
        if p.returncode != 0 or not lines:
            tail = (wdir / f"{client}.stderr.log").read_text(errors="replace").strip().splitlines()[-5:]
            error = f"scenario process exited {p.returncode}: " + " | ".join(tail)
    except subprocess.TimeoutExpired:
        error = f"scenarios timed out after {SCENARIO_TIMEOUT_S}s"
    except Exception as e:  # server did not start
        error = f"harness error: {e}".splitlines()[0]
    finally:
        if srv.is_running():
            apis = common.requests_by_api(srv)
        rc = srv.stop() if srv.is_running() else srv.returncode
        srv.close()
    if rc not in (0, None):
        error = error or f"chronik-server exited {rc} on SIGTERM"
    if "panicked at" in srv.log_text():
        error = error or "chronik-server panicked (see its log)"
    for r in results:
        r["client"] = client
        exp = expected(client, r["feature"], r["scenario"])
        if exp:
            r["expected"] = exp
            r["state"] = {"FAILED": "XFAIL", "PASSED": "XPASS"}.get(r["state"], r["state"])
        if error and r["state"] == "PASSED":
            r["state"], r["detail"] = "FAILED", error
    return {"client": client, "version": version, "results": results, "error": error,
            "server_log": str((wdir / "chronik.log").relative_to(common.ROOT)), "apis": apis,
            "seconds": round(time.monotonic() - t0, 1)}


def table(runs: list[dict]) -> str:
    rows = []
    for run in runs:
        if run["error"] and not run["results"]:
            rows.append((run["client"], "-", "ERROR", "", run["error"][:120]))
        for r in run["results"]:
            why = r.get("expected", "") if r["state"] in ("XFAIL", "XPASS") else r.get("detail", "")
            rows.append((run["client"], r["feature"], r["state"], f"{r['seconds']:.1f}s",
                         f"{r['scenario']}{' -- ' + why if why else ''}"[:150]))
    headers = ("client", "feature", "result", "time", "scenario / reason")
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*headers), "-+-".join("-" * w for w in widths)]
                     + [fmt.format(*row) for row in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="compat.clients", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    for c in CLIENTS:
        ap.add_argument(f"--{c}", action="store_true")
    ap.add_argument("--filter", action="append", default=[],
                    help="only scenarios whose feature starts with, or name contains, WORD")
    args = ap.parse_args(argv)
    chosen = [c for c in CLIENTS if getattr(args, c)] or list(CLIENTS)
    out_dir = common.run_dir("clients")
    binary = common.snapshot_binary(out_dir)
    runs = []
    for c in chosen:
        run = run_client(c, args.filter, out_dir)
        runs.append(run)
        name = f"{c}-results{'-filtered' if args.filter else ''}.json"
        common.write_json(common.TARGET / name, {
            "suite": c, "date": common.utc_now(), "chronik_commit": common.git_version(),
            "chronik_version": common.server_version(binary), "filters": args.filter, **run})
    print()
    print(table(runs))
    print()
    bad = 0
    for run in runs:
        counts: dict[str, int] = {}
        for r in run["results"]:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        bad += counts.get("FAILED", 0) + counts.get("XPASS", 0) + (1 if run["error"] else 0)
        print(f"{run['client']}: {run['version'] or 'not run'} | "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
              + (f" | ERROR {run['error']}" if run["error"] else "") + f" | {run['seconds']:.0f}s")
    print(f"results: {common.TARGET}/<client>-results.json, logs in {out_dir}")
    return 1 if bad else 0


if __name__ == "__main__":
    # Stop at once on SIGTERM/SIGINT: the server and the scenario process die with us (pdeathsig).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    sys.exit(main())
