"""librdkafka's own integration tests against a real server: the CI subset, in quick mode.

`python3 -m compat.librdkafka --ci --quick` (docs/compatibility.md): the tests of CI_TESTS in
compat/librdkafka_expectations.py, each test number in its own test-runner against its own server
(the harness's Server: fresh data dir, free ports). Builds librdkafka and its test-runner on first
use (about 3 minutes; `./configure && make` of the librdkafka bundled in the rdkafka-sys crate that
crates/chronik-bench pins) into target/compat/, reused afterwards.

Asserts: no test fails unless compat/librdkafka_expectations.py expects it (with its reason), and
the runs together made requests of every API the server advertises in ApiVersions (but those in
CI_UNCOVERED_OK, with the reason).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _toolchain_missing() -> str:
    for tool in ("cc", "c++", "make"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if not list(Path.home().glob(".cargo/registry/src/*/rdkafka-sys-*")) and not shutil.which("cargo"):
        return "neither the rdkafka-sys crate source nor cargo (to fetch it) is available"
    return ""


@pytest.mark.timeout(1500)
def test_librdkafka_ci_subset(server_bin, tmp_path):
    missing = _toolchain_missing()
    if missing:
        pytest.skip(f"cannot build librdkafka's test-runner: {missing}")
    out = tmp_path / "librdkafka-ci.json"
    env = dict(os.environ, CHRONIK_BIN=str(server_bin))
    p = subprocess.run([sys.executable, "-m", "compat.librdkafka", "--ci", "--quick",
                        "--jobs", "2", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1450)
    report = p.stdout[-6000:] + "\n--- stderr ---\n" + p.stderr[-3000:]
    assert out.exists(), f"no results written (exit {p.returncode})\n{report}"
    res = json.loads(out.read_text())
    failed = [f"{t['name']}: {t.get('reason', '')}" for t in res["tests"] if t["state"] == "FAILED"]
    assert not failed, "unexpected failures:\n" + "\n".join(failed) + "\n" + report
    assert p.returncode == 0, report
    ran = [t for t in res["tests"] if t["state"] not in ("NOT_RUN",)]
    assert ran, f"no test ran\n{report}"
    sys.path.insert(0, str(ROOT))
    from compat.librdkafka_expectations import CI_UNCOVERED_OK
    used = {api for t in res["tests"] for api, n in (t.get("apis") or {}).items() if n > 0}
    unused = sorted(set(res["advertised_apis"]) - used - set(CI_UNCOVERED_OK))
    assert not unused, (f"the CI subset made no request of these advertised APIs: {unused}; "
                        "add tests using them to CI_TESTS in compat/librdkafka_expectations.py")
