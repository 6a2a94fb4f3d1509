"""Client compatibility scenarios (compat/*_scenarios.*) against a real server, as in CI.

The same scenarios as `scripts/compat.sh --kcat --aiokafka --kafkajs` (see docs/compatibility.md):
produce, fetch, every compression codec, idempotent producer, consumer group with commits, admin,
and transactions. What is expected to fail (transactions, AlterConfigs: compat/clients.py
EXPECTED_FAIL, docs/compatibility.md) must fail, everything else must pass. Each client gets a fresh
server with default settings from the harness.

kcat comes with scripts/test.sh. aiokafka and kafkajs are installed on first use, pinned, into
target/compat/ (compat/clients.py: a venv from compat/requirements.txt, `npm ci` of
compat/package-lock.json) and reused afterwards; the kafkajs test is skipped when Node.js/npm are
missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compat import clients  # noqa: E402


def run_scenarios(client: str, server, tmp_path: Path) -> list[dict]:
    cmd, version = clients.CLIENTS[client]()
    p = subprocess.run(cmd + [server.bootstrap], capture_output=True, text=True,
                       timeout=clients.SCENARIO_TIMEOUT_S, cwd=tmp_path)
    lines = p.stdout.strip().splitlines()
    assert p.returncode == 0 and lines, (
        f"{version} scenarios exited {p.returncode}\n--- stderr ---\n{p.stderr[-3000:]}")
    results = json.loads(lines[-1])
    assert results, f"{version}: no scenario ran"
    unexpected = []
    for r in results:
        exp = clients.expected(client, r["feature"], r["scenario"])
        if (r["state"] == "FAILED") != bool(exp):
            unexpected.append(f"{r['feature']} | {r['scenario']} | {r['state']} {r['detail']}"
                              + (f" (expected to fail: {exp})" if exp else ""))
    assert not unexpected, f"{version}: unexpected results:\n" + "\n".join(unexpected) + \
        f"\n--- stderr ---\n{p.stderr[-3000:]}"
    return results


@pytest.mark.timeout(300)
def test_kcat_scenarios(server, tmp_path):
    if not shutil.which("kcat"):
        pytest.skip("kcat is not installed (scripts/test.sh installs it)")
    run_scenarios("kcat", server, tmp_path)


@pytest.mark.timeout(600)
def test_aiokafka_scenarios(server, tmp_path):
    run_scenarios("aiokafka", server, tmp_path)


@pytest.mark.timeout(600)
def test_kafkajs_scenarios(server, tmp_path):
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("Node.js and npm are needed for the kafkajs scenarios")
    run_scenarios("kafkajs", server, tmp_path)
