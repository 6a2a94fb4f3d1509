#!/usr/bin/env bash
# Quick single-node produce/consume measurement: see docs/benchmarks.md.
#
#   scripts/bench.sh [--messages N] [--size BYTES] [--partitions P] [--json PATH]
#
# Builds nothing: uses target/release/chronik-server (run `cargo build --release` first).
# Sets up the same .venv as scripts/test.sh when missing, starts the server on a fresh temp
# data dir (under $TMPDIR, default /tmp: set TMPDIR to measure another filesystem) and free
# loopback ports, runs bench/quick_bench.py against it, stops the server with SIGTERM and
# removes the temp dir. The results go to stdout and, as JSON, to --json PATH
# (default target/bench/quick-bench-<UTC time>.json).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

MESSAGES=200000
SIZE=1024
PARTITIONS=16
JSON_OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) MESSAGES="${2:?--messages needs a value}"; shift 2 ;;
        --size) SIZE="${2:?--size needs a value}"; shift 2 ;;
        --partitions) PARTITIONS="${2:?--partitions needs a value}"; shift 2 ;;
        --json) JSON_OUT="${2:?--json needs a value}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
for v in "$MESSAGES" "$SIZE" "$PARTITIONS"; do
    if ! [[ "$v" =~ ^[1-9][0-9]*$ ]]; then
        echo "bench.sh: --messages, --size and --partitions take positive integers, got '$v'" >&2
        exit 2
    fi
done
if [ -z "$JSON_OUT" ]; then
    JSON_OUT="$ROOT/target/bench/quick-bench-$(date -u +%Y%m%dT%H%M%SZ).json"
fi

BIN="$ROOT/target/release/chronik-server"
if [ ! -x "$BIN" ]; then
    echo "bench.sh: $BIN not found; run \`cargo build --release\` first (bench.sh builds nothing)" >&2
    exit 1
fi

# step, and the .venv shared with scripts/test.sh (kcat is not needed here).
# shellcheck source=scripts/lib/setup.sh
. "$ROOT/scripts/lib/setup.sh"
SCRIPT_NAME=bench.sh
setup_venv
PY="$VENV/bin/python"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/chronik-bench.XXXXXX")"
DATA="$WORK/data"
SERVER_LOG="$WORK/server.log"
SERVER_PID=""
SERVER_RC=0

cleanup() {
    local rc=$?
    stop_server
    if [ "$rc" -ne 0 ] && [ -f "$SERVER_LOG" ]; then
        echo "bench.sh: failed (status $rc); last lines of the server log:" >&2
        tail -n 30 "$SERVER_LOG" >&2 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r KAFKA_PORT HTTP_PORT < <("$PY" - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*[s.getsockname()[1] for s in socks])
EOF
)
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
HTTP="127.0.0.1:$HTTP_PORT"

# Run a private copy, so that a rebuild during the run changes neither what runs nor what the
# results record about it (mtime kept).
cp -p "$BIN" "$WORK/chronik-server"
step "starting $BIN (a copy; data dir $DATA, kafka $BOOTSTRAP, http $HTTP)"
# The server is configured by flags only: ambient CHRONIK_* settings are dropped.
env $(env | sed -n 's/^\(CHRONIK_[A-Za-z0-9_]*\)=.*/-u \1/p') NO_COLOR=1 \
    "$WORK/chronik-server" --node-id 1 --data-dir "$DATA" --kafka-addr "$BOOTSTRAP" --http-addr "$HTTP" \
    </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

# Wait (bounded) for /health/ready, failing fast if the server exits.
"$PY" - "$HTTP" "$SERVER_PID" <<'EOF'
import os, sys, time, urllib.request
http, pid = sys.argv[1], int(sys.argv[2])
deadline = time.perf_counter() + 30
while True:
    try:
        with urllib.request.urlopen(f"http://{http}/health/ready", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            exited = f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        exited = True
    if exited:
        sys.exit("server exited before becoming ready")
    if time.perf_counter() > deadline:
        sys.exit("server not ready within 30 s")
    time.sleep(0.05)  # poll interval of a condition with a deadline
EOF

step "bench/quick_bench.py --messages $MESSAGES --size $SIZE --partitions $PARTITIONS"
"$PY" "$ROOT/bench/quick_bench.py" \
    --bootstrap "$BOOTSTRAP" --data-dir "$DATA" --server-pid "$SERVER_PID" \
    --metrics-url "http://$HTTP/metrics" --server-bin "$WORK/chronik-server" \
    --messages "$MESSAGES" --size "$SIZE" --partitions "$PARTITIONS" --json "$JSON_OUT"

step "stopping the server (SIGTERM)"
stop_server
if [ "$SERVER_RC" -ne 0 ]; then exit 1; fi
echo "server stopped cleanly; results in $JSON_OUT"
