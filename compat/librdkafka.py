"""librdkafka's own integration suite against a real chronik-server.

    python3 -m compat.librdkafka [--build-only] [--jobs N] [--idempotent] [--quick]
                                 [--brokers 1|3] [--ci] [--out FILE] [TEST...]

The source is the librdkafka tree bundled in the rdkafka-sys crate that crates/chronik-bench pins
(its Cargo.lock); it is taken from ~/.cargo/registry (fetched with `cargo fetch` on
crates/chronik-bench, which is outside the workspace, when missing), copied to
target/compat/librdkafka-<version>/ and built there once with ./configure + make (librdkafka, the
C++ wrapper and tests/test-runner); the build is redone only when the source, the configure flags
or the available compression libraries change.

The tests: every test of tests/test.c's table that talks to a broker (not TEST_F_LOCAL, which only
use librdkafka's mock cluster or no broker at all) and not in compat/librdkafka_expectations.py's
NOT_APPLICABLE (needs SASL/SSL, Kafka's command-line tools, several brokers, ...). Each test number
(e.g. 0045, which holds several named tests) runs in its own `test-runner` process against its own
chronik-server (fresh data dir, free ports), configured as librdkafka's trivup clusters are for the
test's scenario ("default": auto-create on, num.partitions 4; "noautocreate": auto-create off),
with `TEST_KAFKA_VERSION` 4.0.0 and librdkafka's broker-run flags `-L -K` (no local tests, no known
librdkafka issues). Full tests by default; `--quick` adds `-Q` (fewer messages, and every sub-test
not marked SUB_TEST_QUICK is skipped: much less coverage, used for the CI subset).
`--idempotent` adds `-P` (every producer idempotent; librdkafka's `broker_idempotent` run).
`--brokers 3` runs every test number against its own three-node cluster (replication factor 3
by default, the bootstrap list naming all three nodes), and also runs the tests that need three
brokers.

A test's result is PASSED, FAILED, FLAKY (failed, then passed when its test number was re-run once;
--no-rerun turns that off), SKIPPED (the test skipped itself, with its reason), XFAIL (failed as
compat/librdkafka_expectations.py expects, with the reason), XPASS (passed though expected to
fail: update the expectations and docs/compatibility.md) or NOT_RUN (with the reason). A server
that crashes or does not exit 0 on SIGTERM fails every test of its run. Prints a table and writes
JSON (default target/compat/librdkafka-results[-3nodes][-idempotent][-ci][-selection][-quick].json;
docs/compatibility.md is generated from the full runs' files); logs are kept in
target/compat/runs/. Exit status 1 if any test FAILED.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from compat import common
from compat.librdkafka_expectations import (CI_TESTS, EXPECTED_FAIL, EXPECTED_FAIL_3NODES,
                                           NEEDS_THREE_BROKERS, NOT_APPLICABLE, SPLIT_SUBTESTS,
                                           TEST_TIMEOUT_S)

BENCH_LOCK = common.ROOT / "crates" / "chronik-bench" / "Cargo.lock"
CONFIGURE_FLAGS = ["--disable-gssapi", "--disable-curl"]
KAFKA_VERSION = "4.0.0"
DEFAULT_TIMEOUT_S = 900
# Server flags per librdkafka test scenario (tests/scenarios/*.json, as trivup applies them to
# Kafka; every other broker setting is Kafka's default, which is Chronik's default too).
SCENARIO_ARGS = {
    "default": ["--num-partitions", "4", "--auto-create-topics-enable", "true"],
    "noautocreate": ["--num-partitions", "4", "--auto-create-topics-enable", "false"],
}
# Optional libraries the build picks up when present (configure "try"): zstd compression, and
# RapidJSON, which tests 0053, 0098, 0101 and 0110 need to check statistics JSON.
OPTIONAL_HEADERS = ("/usr/include/zstd.h", "/usr/include/rapidjson/schema.h",
                    "/usr/include/openssl/ssl.h", "/usr/include/zlib.h")
ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\(B")
# Brokers per test run (--brokers): 1, or a three-node cluster.
BROKERS = 1

_print_lock = threading.Lock()


def say(msg: str) -> None:
    with _print_lock:
        common.log(msg)


# --- source and build ------------------------------------------------------------------------

def rdkafka_sys_version() -> str:
    text = BENCH_LOCK.read_text()
    m = re.search(r'name = "rdkafka-sys"\nversion = "([^"]+)"', text)
    if not m:
        raise SystemExit(f"rdkafka-sys not found in {BENCH_LOCK}")
    return m.group(1)


def cargo_home() -> Path:
    return Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))


def find_source(version: str) -> Path | None:
    hits = sorted(glob.glob(str(cargo_home() / "registry" / "src" / "*" / f"rdkafka-sys-{version}"
                                / "librdkafka")))
    return Path(hits[-1]) if hits else None


def locate_source() -> tuple[Path, str]:
    """The librdkafka source tree of the pinned rdkafka-sys and librdkafka's version."""
    env = os.environ.get("LIBRDKAFKA_SRC")
    if env:
        src = Path(env)
    else:
        version = rdkafka_sys_version()
        src = find_source(version)
        if src is None:
            say(f"rdkafka-sys {version} is not in {cargo_home()}/registry: "
                "cargo fetch --manifest-path crates/chronik-bench/Cargo.toml")
            subprocess.run(["nice", "-n", "10", "cargo", "fetch", "--manifest-path",
                            str(common.ROOT / "crates" / "chronik-bench" / "Cargo.toml")],
                           check=True)
            src = find_source(version)
            if src is None:
                raise SystemExit(f"rdkafka-sys {version} still missing after cargo fetch")
    header = (src / "src" / "rdkafka.h").read_text(errors="replace")
    m = re.search(r"#define RD_KAFKA_VERSION\s+0x([0-9a-fA-F]{8})", header)
    if not m:
        raise SystemExit(f"no RD_KAFKA_VERSION in {src}/src/rdkafka.h")
    v = int(m.group(1), 16)
    libver = f"{(v >> 24) & 0xff}.{(v >> 16) & 0xff}.{(v >> 8) & 0xff}"
    return src, libver


def build_key(src: Path) -> str:
    """What the cached build depends on: the source, our flags, the optional libraries."""
    h = hashlib.sha256()
    h.update(str(src).encode())
    h.update(" ".join(CONFIGURE_FLAGS).encode())
    for header in OPTIONAL_HEADERS:
        h.update(f"{header}={os.path.exists(header)}".encode())
    for f in sorted((src / "tests").glob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}".encode())
    return h.hexdigest()


def build(jobs: int = 2) -> tuple[Path, str]:
    """Build librdkafka and tests/test-runner once; returns (build dir, librdkafka version)."""
    src, libver = locate_source()
    dest = common.TARGET / f"librdkafka-{libver}"
    stamp = dest / ".compat-build"
    key = build_key(src)
    runner = dest / "tests" / "test-runner"
    if stamp.is_file() and stamp.read_text().strip() == key and runner.is_file():
        return dest, libver
    say(f"building librdkafka {libver} and its test-runner in {dest} (once; about 3 minutes)")
    if not os.path.exists("/usr/include/zstd.h"):
        say("warning: zstd.h missing (apt-get install libzstd-dev): built without zstd, "
            "so zstd compression is not tested")
    if not os.path.exists("/usr/include/rapidjson/schema.h"):
        say("warning: RapidJSON missing (apt-get install rapidjson-dev): tests 0053, 0098, 0101 "
            "and 0110 will skip themselves")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, symlinks=True)
    logs = common.TARGET / "build-logs"
    logs.mkdir(parents=True, exist_ok=True)
    nice = ["nice", "-n", "10"]
    steps = [
        ("configure", nice + ["./configure"] + CONFIGURE_FLAGS, dest),
        ("make-src", nice + ["make", f"-j{jobs}", "-C", "src"], dest),
        ("make-src-cpp", nice + ["make", f"-j{jobs}", "-C", "src-cpp"], dest),
        ("make-tests", nice + ["make", f"-j{jobs}", "build"], dest / "tests"),
    ]
    for name, cmd, cwd in steps:
        t0 = time.monotonic()
        with open(logs / f"{name}.log", "wb") as out:
            rc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            tail = (logs / f"{name}.log").read_text(errors="replace").splitlines()[-30:]
            raise SystemExit(f"librdkafka build step {name} failed (exit {rc}); "
                             f"log {logs / (name + '.log')}:\n" + "\n".join(tail))
        say(f"  {name}: {time.monotonic() - t0:.0f}s")
    stamp.write_text(key + "\n")
    return dest, libver


# --- the test table ----------------------------------------------------------------------------

@dataclass
class TestDef:
    name: str          # e.g. "0045_subscribe_update_mock"
    number: str        # e.g. "0045"
    flags: set[str]    # e.g. {"TEST_F_LOCAL"}
    scenarios: list[str]


def parse_tests(build_dir: Path) -> list[TestDef]:
    """The tests[] table of tests/test.c: name, flags and scenario of every test."""
    text = (build_dir / "tests" / "test.c").read_text(errors="replace")
    start = text.index("struct test tests[] = {")
    end = text.index("{NULL}};", start)
    table = text[start:end]
    out = []
    pos = 0
    while (i := table.find("_TEST(", pos)) >= 0:
        # the entry runs to the matching closing parenthesis
        depth, j = 0, i + len("_TEST")
        while True:
            c = table[j]
            depth += (c == "(") - (c == ")")
            j += 1
            if depth == 0:
                break
        entry, pos = table[i + len("_TEST("):j - 1], j
        parts = entry.split(",", 2)
        name, flags = parts[0].strip(), parts[1].strip()
        sc = re.search(r'\.scenario\s*=\s*"([^"]*)"', entry)
        out.append(TestDef(name=name, number=name[:4],
                           flags={f.strip() for f in flags.split("|") if f.strip() not in ("0", "")},
                           scenarios=(sc.group(1).split(",") if sc else ["default"])))
    if len(out) < 100:
        raise SystemExit(f"parsed only {len(out)} tests from {build_dir}/tests/test.c")
    return out


# --- results -------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    number: str
    scenario: str
    state: str                 # PASSED FAILED FLAKY SKIPPED XFAIL XPASS NOT_RUN
    reason: str = ""           # skip/fail/not-run reason
    expected: str = ""         # EXPECTED_FAIL reason, if any
    duration: float = 0.0
    log: str = ""
    apis: dict = field(default_factory=dict)   # Kafka API -> requests the server answered
    subtests_passed: int = 0                   # sub-tests ("[ name: PASS ]") of this run

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None, {}, 0)}


def expected_failure(name: str, quick: bool) -> str | None:
    """EXPECTED_FAIL's reason for a test, if it is expected to fail in this mode."""
    v = EXPECTED_FAIL_3NODES.get(name) if BROKERS >= 3 else None
    v = v or EXPECTED_FAIL.get(name)
    if isinstance(v, tuple):
        reason, mode = v
        return None if (mode == "full" and quick) else reason
    return v


def not_run_reason(t: TestDef) -> str | None:
    if BROKERS >= 3 and (t.name in NEEDS_THREE_BROKERS or t.number in NEEDS_THREE_BROKERS):
        return None
    if t.name in NOT_APPLICABLE:
        return NOT_APPLICABLE[t.name]
    if t.number in NOT_APPLICABLE:
        return NOT_APPLICABLE[t.number]
    if "TEST_F_LOCAL" in t.flags:
        return "client-only test (TEST_F_LOCAL: no broker, or librdkafka's mock cluster)"
    if "TEST_F_MANUAL" in t.flags:
        return "manual test"
    if "TEST_F_KNOWN_ISSUE" in t.flags:
        return "marked TEST_F_KNOWN_ISSUE in librdkafka (skipped by its broker runs, -K)"
    if not ({"default", "noautocreate"} & set(t.scenarios)):
        return f"scenario {','.join(t.scenarios)} (another Kafka version) not run"
    return None


@dataclass
class Job:
    number: str
    scenario: str
    tests: list[TestDef]
    subtest: str = ""   # run only this sub-test function (SUBTESTS), see SPLIT_SUBTESTS
    results: list[Result] = field(default_factory=list)
    apis: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.number}-{self.scenario}" + (f"-{self.subtest}" if self.subtest else "")


def subtest_functions(build_dir: Path, number: str) -> list[str]:
    """Functions of a test's source that start sub-tests (SUB_TEST/SUB_TEST_QUICK), in order."""
    funcs: list[str] = []
    for src in sorted((build_dir / "tests").glob(f"{number}-*.c*")):
        current = None
        for line in src.read_text(errors="replace").splitlines():
            # a definition at column 0: "static void f(...) {" or "f(...) {" after "static void"
            m = re.match(r"^(?:(?:static|const|unsigned|struct)\s+)*(?:[A-Za-z_]\w*[\s\*]+)?"
                         r"([A-Za-z_]\w*)\s*\(", line)
            if m and not line.startswith((" ", "\t", "#")) and not line.rstrip().endswith(";"):
                current = m.group(1)
            if re.search(r"\bSUB_TEST(_QUICK)?\(", line) and current and current not in funcs:
                funcs.append(current)
    return funcs


def parse_output(out: str) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """(summary: name -> (state, failstr), first failure message per test) from runner output."""
    text = ANSI.sub("", out)
    summary: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*(\S+)\s*\|\s*(PASSED|FAILED|SKIPPED|RUNNING|NOT_STARTED)\s*\|"
                     r"\s*[0-9.]+s\s*\|\s*(.*)$", line)
        if m:
            summary[m.group(1)] = (m.group(2), m.group(3).strip())
    fails: dict[str, str] = {}
    for m in re.finditer(r'### Test "([^" ]+)(?: \((.*?)\))?" failed at ([^\n]*?) at \w{3} \w{3} '
                         r'[^\n]*###\n([^\n]*)', text):
        where = f"{m.group(2)}: " if m.group(2) else ""
        fails.setdefault(m.group(1), f"{where}{m.group(3)}: {m.group(4).strip()}")
    return summary, fails


def start_servers(jdir: Path, scenario: str) -> list[common.Server]:
    """The server (or the three nodes of a cluster) of one run, configured, not started."""
    if BROKERS < 3:
        return [common.Server(jdir, extra_args=SCENARIO_ARGS[scenario], name="chronik")]
    from cluster_harness import Cluster  # tests/cluster_harness.py

    def factory(name: str, node_id: int, extra_args: list[str]) -> common.Server:
        return common.Server(jdir / name, name=name, node_id=node_id,
                             extra_args=SCENARIO_ARGS[scenario] + extra_args)
    cluster = Cluster(factory, size=BROKERS)
    return [cluster[i] for i in cluster.ids]


def launch(servers: list[common.Server]) -> str:
    """Starts the servers (all at once: a cluster is ready only once a majority runs) and
    waits until every one is ready; returns the bootstrap list."""
    for srv in servers:
        srv.start(wait=False)
    for srv in servers:
        srv.wait_ready()
    return ",".join(srv.bootstrap for srv in servers)


def stop_server(srv: common.Server, job: Job) -> str:
    """Stops one server (SIGTERM, must exit 0), adding its request counts to the job's; returns
    what went wrong with it, or ""."""
    problem = ""
    if srv.is_running():
        for api, n in common.requests_by_api(srv).items():
            job.apis[api] = job.apis.get(api, 0) + n
        try:
            src = srv.stop()
            if src != 0:
                problem = f"{srv.name} exited {src} on SIGTERM"
        except AssertionError as e:
            problem = str(e).splitlines()[0]
    elif srv.returncode is not None:
        problem = f"{srv.name} died during the test (exit {srv.returncode})"
    srv.close()
    return problem


def run_job(job: Job, build_dir: Path, out_dir: Path, args: argparse.Namespace) -> Job:
    tests_dir = build_dir / "tests"
    jdir = out_dir / job.key
    jdir.mkdir(parents=True, exist_ok=True)
    servers = start_servers(jdir, job.scenario)
    t0 = time.monotonic()
    rc = None
    out_path = jdir / "test-runner.log"
    report_path = jdir / "report.json"
    timed_out = False
    server_problem = ""
    try:
        bootstrap = launch(servers)
        (jdir / "test.conf").write_text(
            "# written by compat/librdkafka.py, as librdkafka's trivup runs write it\n"
            f"bootstrap.servers={bootstrap}\n"
            "broker.address.family=v4\n"
            "security.protocol=plaintext\n"
            f"test.timeout.multiplier={args.timeout_multiplier}\n")
        env = dict(os.environ)
        for k in ("KAFKA_PATH", "BROKERS", "ZK_ADDRESS", "TEST_DEBUG", "CI"):
            env.pop(k, None)
        env.update({
            "RDKAFKA_TEST_CONF": str(jdir / "test.conf"),
            "TEST_KAFKA_VERSION": args.kafka_version,
            "TESTS": job.number,
            "TEST_SCENARIO": job.scenario,
            "TEST_REPORT": str(report_path),
            "TEST_MODE": "bare",
            "RDKAFKA_GITVER": "compat",
            "LD_LIBRARY_PATH": f"{build_dir / 'src'}:{build_dir / 'src-cpp'}",
        })
        if args.debug:
            env["TEST_DEBUG"] = args.debug
        if job.subtest:
            env["SUBTESTS"] = f"{job.subtest}:"  # sub-test names are "function:line: ..."
        elif args.subtests:
            env["SUBTESTS"] = args.subtests
        flags = ["-p1", "-L", "-K", "-s", job.scenario]
        if args.quick:
            flags.append("-Q")
        if args.idempotent:
            flags.append("-P")
        cmd = common.pdeathsig([str(tests_dir / "test-runner")] + flags)
        timeout = TEST_TIMEOUT_S.get(job.number, DEFAULT_TIMEOUT_S)
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=tests_dir, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.kill()
                rc = proc.wait()
    except Exception as e:  # server did not start, ...
        server_problem = f"harness error: {e}".splitlines()[0]
    finally:
        job.apis = {}
        for srv in servers:
            problem = stop_server(srv, job)
            server_problem = server_problem or problem
    job.seconds = time.monotonic() - t0
    for srv in servers:
        log_text = srv.log_text()
        if "panicked at" in log_text:
            line = next(l for l in log_text.splitlines() if "panicked at" in l)
            server_problem = server_problem or f"{srv.name} panic: {line.strip()[:300]}"

    out_text = out_path.read_text(errors="replace") if out_path.exists() else ""
    summary, fails = parse_output(out_text)
    sub_passed = len(re.findall(r"\[ [^\n]*?: PASS \([0-9.]+s\) \]", ANSI.sub("", out_text)))
    report = {}
    try:
        report = json.loads(report_path.read_text()).get("tests", {})
    except (OSError, ValueError):
        pass
    main_fail = fails.get("<MAIN>", "")
    for t in job.tests:
        if job.scenario not in t.scenarios:
            continue  # reported by this number's run in its own scenario
        state, failstr = summary.get(t.name, ("", ""))
        if not state and t.name in report:
            state = report[t.name].get("state", "")
        duration = float(report.get(t.name, {}).get("duration", 0.0))
        reason = ""
        if state == "PASSED":
            if main_fail and rc not in (0, None):
                # All of the test's checks passed, but the runner failed afterwards (e.g.
                # "N thread(s) still active in librdkafka" at exit): count it as a failure.
                state, reason = "FAILED", f"after the test: {main_fail}"
        elif state == "FAILED":
            reason = fails.get(t.name) or failstr
        elif state == "SKIPPED":
            reason = failstr or "skipped"
            if "negative test flags" in reason or "not included in TESTS" in reason:
                continue  # filtered by our flags: a local/known-issue variant of this number
        elif state in ("RUNNING", "NOT_STARTED", ""):
            if timed_out:
                state, reason = "FAILED", f"timed out after {timeout}s (killed)"
            elif server_problem and not state:
                state, reason = "FAILED", server_problem
            elif not state:
                # never reported: the runner crashed
                state = "FAILED"
                reason = f"no result (test-runner exit {rc}){': ' + main_fail if main_fail else ''}"
            else:
                state, reason = "FAILED", f"{state.lower()} at exit (test-runner exit {rc})"
        if server_problem and state in ("PASSED", "SKIPPED"):
            state, reason = "FAILED", server_problem
        elif server_problem and state == "FAILED":
            reason = f"{reason} [{server_problem}]"
        name = t.name
        if job.subtest:
            name = f"{t.name}[{job.subtest}]"
            ran = re.search(rf"\[ {re.escape(job.subtest)}:\d+", ANSI.sub("", out_text))
            skip = re.search(rf"\[ {re.escape(job.subtest)}:[^\n]*: SKIP: ([^\n]*?) \]",
                             ANSI.sub("", out_text))
            if state == "PASSED" and skip:
                state, reason = "SKIPPED", skip.group(1)
            elif state == "PASSED" and not ran:
                state, reason = "SKIPPED", ("sub-test not started (quick mode, broker version or "
                                            "client type)")
        exp = expected_failure(name, args.quick) or (
            expected_failure(t.name, args.quick) if not job.subtest else None)
        if exp:
            if state == "FAILED":
                state = "XFAIL"
            elif state == "PASSED":
                state = "XPASS"
        job.results.append(Result(name=name, number=t.number, scenario=job.scenario,
                                  state=state, reason=reason, expected=exp or "",
                                  duration=round(duration, 3),
                                  log=str(out_path.relative_to(common.ROOT)), apis=job.apis,
                                  subtests_passed=sub_passed))
    return job


# --- main ----------------------------------------------------------------------------------

def plan(tests: list[TestDef], only: list[str], ci: bool,
         build_dir: Path) -> tuple[list[Job], list[Result]]:
    not_run: list[Result] = []
    by_key: dict[tuple[str, str], list[TestDef]] = {}
    selected = set(only) | (set(CI_TESTS) if ci else set())
    # "0081_admin[do_test_CreateTopics]": only that sub-test of a SPLIT_SUBTESTS test
    sub_selected: dict[str, set[str]] = {}
    for sel in selected:
        m = re.fullmatch(r"(\w+)\[(\w+)\]", sel)
        if m:
            sub_selected.setdefault(m.group(1), set()).add(m.group(2))
    for t in tests:
        if (selected and t.number not in selected and t.name not in selected
                and t.name not in sub_selected):
            continue
        reason = not_run_reason(t)
        if reason:
            not_run.append(Result(name=t.name, number=t.number,
                                  scenario=",".join(t.scenarios), state="NOT_RUN", reason=reason))
            continue
        for sc in t.scenarios:
            if sc in SCENARIO_ARGS:
                by_key.setdefault((t.number, sc), []).append(t)
    jobs = []
    for (number, sc), ts in sorted(by_key.items()):
        # every named test of this number that the runner may report in this scenario
        group = [t for t in tests if t.number == number and not not_run_reason(t)]
        if number in SPLIT_SUBTESTS:
            wanted = None   # every sub-test, unless only some were selected
            if selected and number not in selected and not any(t.name in selected for t in group):
                wanted = set().union(*(sub_selected.get(t.name, set()) for t in group))
            for func in subtest_functions(build_dir, number):
                if wanted is None or func in wanted:
                    jobs.append(Job(number=number, scenario=sc, tests=group, subtest=func))
        else:
            jobs.append(Job(number=number, scenario=sc, tests=group))
    return jobs, not_run


def durations_path() -> Path:
    return common.TARGET / "librdkafka-durations.json"


def table(results: list[Result]) -> str:
    rows = [(r.name, r.scenario, r.state, f"{r.duration:.1f}s" if r.duration else "",
             (r.expected if r.state in ("XFAIL", "XPASS") else r.reason)[:110])
            for r in results if r.state != "NOT_RUN"]
    if not rows:
        return "(no tests run)"
    headers = ("test", "scenario", "result", "time", "reason")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), "-+-".join("-" * w for w in widths)]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="compat.librdkafka", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tests", nargs="*", help="test numbers (0045) or names; default: all")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="test numbers run at once (default 2)")
    ap.add_argument("--ci", action="store_true", help="only the CI subset (CI_TESTS)")
    ap.add_argument("--idempotent", action="store_true",
                    help="every producer idempotent (-P), as librdkafka's broker_idempotent run")
    ap.add_argument("--quick", action="store_true",
                    help="librdkafka's quick mode (-Q): fewer messages, and every sub-test not "
                         "marked SUB_TEST_QUICK is skipped (default: full tests)")
    ap.add_argument("--brokers", type=int, choices=(1, 3), default=1,
                    help="brokers per test run: 1, or a three-node cluster (default 1)")
    ap.add_argument("--kafka-version", default=KAFKA_VERSION)
    ap.add_argument("--timeout-multiplier", default="2", help="test.timeout.multiplier (2, as trivup)")
    ap.add_argument("--debug", default="", help="TEST_DEBUG for the clients, e.g. cgrp,fetch")
    ap.add_argument("--no-rerun", dest="rerun_failed", action="store_false",
                    help="do not re-run a failed test number once (default: re-run; a test that "
                         "then passes is reported FLAKY)")
    ap.add_argument("--subtests", default="", help="SUBTESTS: only sub-tests whose name has this")
    ap.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = ap.parse_args(argv)
    global BROKERS
    BROKERS = args.brokers
    nodes = "-3nodes" if BROKERS >= 3 else ""

    build_dir, libver = build()
    if args.build_only:
        print(f"librdkafka {libver} test-runner: {build_dir / 'tests' / 'test-runner'}")
        return 0
    tests = parse_tests(build_dir)
    jobs, not_run = plan(tests, args.tests, args.ci, build_dir)
    if not jobs:
        print("no test selected", file=sys.stderr)
        return 2
    mode = ("idempotent" if args.idempotent else "default") + (", 3 nodes" if nodes else "")
    out_dir = common.run_dir("librdkafka" + nodes + ("-idempotent" if args.idempotent else ""))
    binary = common.snapshot_binary(out_dir)
    try:
        past = json.loads(durations_path().read_text())
    except (OSError, ValueError):
        past = {}
    suffix = "-quick" if args.quick else ""
    jobs.sort(key=lambda j: -past.get(j.key + suffix, 60.0))  # longest first
    # what the server advertises, to report which advertised APIs the run exercised
    probe = common.Server(out_dir / "apiversions", name="chronik")
    try:
        probe.start()
        advertised = common.advertised_apis(probe.bootstrap)
    finally:
        if probe.is_running():
            probe.stop()
        probe.close()
    say(f"librdkafka {libver}: {len(jobs)} runs ({sum(len(j.tests) for j in jobs)} named tests), "
        f"{args.jobs} at a time, mode {mode}{', quick' if args.quick else ''}; logs in {out_dir}")
    t0 = time.monotonic()
    done: list[Job] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {pool.submit(run_job, j, build_dir, out_dir, args): j for j in jobs}
        for fut in concurrent.futures.as_completed(futs):
            j = fut.result()
            done.append(j)
            states = ", ".join(f"{r.name} {r.state}" for r in j.results) or "nothing reported"
            say(f"[{len(done)}/{len(jobs)}] {j.key} ({j.seconds:.0f}s): {states}")
    if args.rerun_failed:
        again = [j for j in done if any(r.state == "FAILED" for r in j.results)]
        for j in again:
            say(f"re-running {j.key} once (it failed)")
            first = {r.name: r for r in j.results}
            retry = run_job(Job(number=j.number, scenario=j.scenario, tests=j.tests,
                                subtest=j.subtest), build_dir, out_dir / "rerun", args)
            merged = []
            for r in retry.results:
                r0 = first.get(r.name)
                if r0 and r0.state == "FAILED" and r.state in ("PASSED", "SKIPPED"):
                    r.state = "FLAKY"
                    r.reason = f"failed, then passed when re-run; first failure: {r0.reason}"
                    r.log = f"{r0.log} (re-run: {r.log})"
                merged.append(r)
            j.results = merged
            say(f"  {', '.join(f'{r.name} {r.state}' for r in j.results)}")
    elapsed = time.monotonic() - t0
    past.update({j.key + suffix: round(j.seconds, 1) for j in done})
    common.write_json(durations_path(), past)

    results = sorted([r for j in done for r in j.results], key=lambda r: (r.name, r.scenario))
    results += sorted(not_run, key=lambda r: r.name)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.state] = counts.get(r.state, 0) + 1
    print()
    print(table(results))
    print()
    print("librdkafka", libver, "mode", mode, "|",
          ", ".join(f"{k} {counts[k]}" for k in
                    ("PASSED", "FAILED", "FLAKY", "XFAIL", "XPASS", "SKIPPED", "NOT_RUN")
                    if k in counts),
          f"| {elapsed:.0f}s")
    used = {api for j in done for api, n in j.apis.items() if n > 0}
    unused = sorted(set(advertised) - used)
    print("advertised APIs exercised:", f"{len(set(advertised) & used)}/{len(advertised)}",
          f"(not exercised: {', '.join(unused)})" if unused else "(all)")
    for r in results:
        if r.state == "XPASS":
            print(f"XPASS {r.name}: expected to fail ({r.expected}); update "
                  "compat/librdkafka_expectations.py and docs/compatibility.md")
    out = args.out or (common.TARGET / f"librdkafka-results{nodes}{'-idempotent' if args.idempotent else ''}"
                                       f"{'-ci' if args.ci else ''}{'-selection' if args.tests else ''}"
                                       f"{suffix}.json")
    common.write_json(out, {
        "suite": "librdkafka",
        "date": common.utc_now(),
        "librdkafka_version": libver,
        "mode": mode,
        "brokers": BROKERS,
        "quick": args.quick,
        "kafka_version": args.kafka_version,
        "chronik_commit": common.git_version(),
        "chronik_version": common.server_version(binary),
        "selection": args.tests or ("ci" if args.ci else "all"),
        "seconds": round(elapsed, 1),
        "counts": counts,
        "run_dir": str(out_dir.relative_to(common.ROOT)),
        "advertised_apis": advertised,
        "tests": [r.as_dict() for r in results],
    })
    print(f"results: {out}")
    return 1 if counts.get("FAILED") else 0


if __name__ == "__main__":
    # Stop at once on SIGTERM/SIGINT: the servers and test-runners die with us (pdeathsig).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    sys.exit(main())
