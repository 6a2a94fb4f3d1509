"""Shared pieces of the compatibility suites: paths, the server under test, child processes, JSON.

Every suite runs against a private copy of the server binary (a rebuild of target/release during a
run does not matter), on a fresh data dir and free loopback ports (tests/harness.py's Server).
Child processes run under `setpriv --pdeathsig KILL` when available, so nothing outlives a killed
run; scripts/compat.sh also runs everything in its own process group.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target" / "compat"

sys.path.insert(0, str(ROOT / "tests"))
import harness  # noqa: E402  (tests/harness.py: Server, free_ports, wait_until)

SETPRIV = shutil.which("setpriv")


def pdeathsig(cmd: list[str]) -> list[str]:
    """cmd, run so that it gets SIGKILL when the process (thread) that started it dies."""
    return ([SETPRIV, "--pdeathsig", "KILL", "--"] if SETPRIV else []) + list(cmd)


def log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_version() -> str:
    """Short commit of the repository, with "+dirty" when the work tree has changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               text=True, capture_output=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def snapshot_binary(dest_dir: Path, source: Path | None = None) -> Path:
    """Copy the server binary under test ($CHRONIK_BIN or target/release/chronik-server) to
    dest_dir and point $CHRONIK_BIN at the copy (tests/harness.py reads it at every start)."""
    src = Path(source) if source else harness.server_binary()
    if not src.is_file() or not os.access(src, os.X_OK):
        raise SystemExit(f"chronik-server binary not found at {src}; run `cargo build --release` "
                         "or set CHRONIK_BIN (the compatibility suites build nothing in the workspace)")
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / "chronik-server"
    shutil.copy2(src, dest)
    os.environ["CHRONIK_BIN"] = str(dest)
    return dest


class Server(harness.Server):
    """tests/harness.py's Server, its process tied to ours with pdeathsig."""

    def command(self) -> list[str]:
        return pdeathsig(super().command())


def start_server(workdir: Path, extra_args: list[str] | tuple[str, ...] = (),
                 name: str = "chronik") -> Server:
    srv = Server(workdir, extra_args=list(extra_args), name=name)
    srv.start()
    return srv


def requests_by_api(srv: harness.Server) -> dict[str, int]:
    """chronik_requests_total per Kafka API from the server's /metrics (what a run exercised)."""
    import re
    try:
        status, body = harness.http_get(srv.url("/metrics"), timeout=5.0)
    except OSError:
        return {}
    if status != 200:
        return {}
    return {m.group(1): int(float(m.group(2))) for m in
            re.finditer(r'^chronik_requests_total\{api="([^"]+)"\}\s+(\S+)$', body, re.M)}


# Kafka's API names by key (the names Chronik's /metrics uses as labels).
KAFKA_API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions",
    19: "CreateTopics", 20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId",
    23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn",
    27: "WriteTxnMarkers", 28: "TxnOffsetCommit", 29: "DescribeAcls", 30: "CreateAcls",
    31: "DeleteAcls", 32: "DescribeConfigs", 33: "AlterConfigs", 34: "AlterReplicaLogDirs",
    35: "DescribeLogDirs", 36: "SaslAuthenticate", 37: "CreatePartitions",
    38: "CreateDelegationToken", 39: "RenewDelegationToken", 40: "ExpireDelegationToken",
    41: "DescribeDelegationToken", 42: "DeleteGroups", 43: "ElectLeaders",
    44: "IncrementalAlterConfigs", 45: "AlterPartitionReassignments",
    46: "ListPartitionReassignments", 47: "OffsetDelete", 48: "DescribeClientQuotas",
    49: "AlterClientQuotas", 50: "DescribeUserScramCredentials", 51: "AlterUserScramCredentials",
    55: "DescribeQuorum", 57: "UpdateFeatures", 60: "DescribeCluster", 61: "DescribeProducers",
    64: "UnregisterBroker", 65: "DescribeTransactions", 66: "ListTransactions",
    68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe", 71: "GetTelemetrySubscriptions",
    72: "PushTelemetry", 74: "ListClientMetricsResources", 75: "DescribeTopicPartitions",
}


def advertised_apis(bootstrap: str) -> dict[str, list[int]]:
    """What the server advertises in ApiVersions: {api name: [min version, max version]}."""
    import kafka_wire
    with kafka_wire.connect(bootstrap) as sock:
        resp = kafka_wire.api_versions_v0(sock, correlation_id=1)
    return {KAFKA_API_NAMES.get(k, f"api-{k}"): [lo, hi] for k, lo, hi in resp.api_keys}


def server_version(binary: Path) -> str:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def run_dir(suite: str) -> Path:
    """A fresh directory for one run of a suite: target/compat/runs/<suite>-<UTC time>."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    d = TARGET / "runs" / f"{suite}-{stamp}"
    n = 1
    while d.exists():
        n += 1
        d = TARGET / "runs" / f"{suite}-{stamp}-{n}"
    d.mkdir(parents=True)
    return d
