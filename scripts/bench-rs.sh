#!/usr/bin/env bash
# Rust benchmark of a single-node chronik-server with chronik-bench (librdkafka): see
# docs/benchmarks.md.
#
#   scripts/bench-rs.sh [--duration S] [--fixed-duration S] [--value-bytes B] [--producers N]
#                       [--consumers N] [--disk-seconds S] [--json PATH] [-- CHRONIK-BENCH FLAGS]
#
# Builds crates/chronik-bench (release, in its own workspace: it compiles librdkafka, which the
# everyday build and CI do not) and, when missing, target/release/chronik-server. Starts a
# private copy of the server on a fresh temp data dir (under $TMPDIR, default /tmp: set TMPDIR
# to measure another filesystem) and free loopback ports, runs `chronik-bench --matrix standard`
# with the disk test on the data dir's filesystem, prints the tables, writes the JSON report to
# --json PATH (default target/bench/chronik-bench-<UTC time>.json) and the server log next to
# it, stops the server with SIGTERM and removes the temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() {
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

DURATION=5
FIXED_DURATION=10
VALUE_BYTES=1024
PRODUCERS=1
CONSUMERS=1
DISK_SECONDS=3
JSON_OUT=""
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="${2:?--duration needs a value}"; shift 2 ;;
        --fixed-duration) FIXED_DURATION="${2:?--fixed-duration needs a value}"; shift 2 ;;
        --value-bytes) VALUE_BYTES="${2:?--value-bytes needs a value}"; shift 2 ;;
        --producers) PRODUCERS="${2:?--producers needs a value}"; shift 2 ;;
        --consumers) CONSUMERS="${2:?--consumers needs a value}"; shift 2 ;;
        --disk-seconds) DISK_SECONDS="${2:?--disk-seconds needs a value}"; shift 2 ;;
        --json) JSON_OUT="${2:?--json needs a value}"; shift 2 ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-rs.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
for v in "$DURATION" "$FIXED_DURATION" "$VALUE_BYTES" "$PRODUCERS" "$DISK_SECONDS"; do
    if ! [[ "$v" =~ ^[1-9][0-9]*$ ]]; then
        echo "bench-rs.sh: --duration, --fixed-duration, --value-bytes, --producers and --disk-seconds take positive integers, got '$v'" >&2
        exit 2
    fi
done
if ! [[ "$CONSUMERS" =~ ^[0-9]+$ ]]; then
    echo "bench-rs.sh: --consumers takes a non-negative integer, got '$CONSUMERS'" >&2
    exit 2
fi
STAMP_UTC="$(date -u +%Y%m%dT%H%M%SZ)"
if [ -z "$JSON_OUT" ]; then
    JSON_OUT="$ROOT/target/bench/chronik-bench-$STAMP_UTC.json"
fi
mkdir -p "$(dirname "$JSON_OUT")"
SERVER_LOG_OUT="${JSON_OUT%.json}.server.log"

# step and SUDO are shared with scripts/test.sh and scripts/bench.sh (no venv, no kcat here).
# shellcheck source=scripts/lib/setup.sh
. "$ROOT/scripts/lib/setup.sh"
SCRIPT_NAME=bench-rs.sh

# --- build tools: librdkafka is built from source by rdkafka-sys (./configure + make, a C
# compiler); cmake is not needed. Installed only when missing.
if ! command -v make >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1; then
    step "installing make and a C compiler (to build librdkafka)"
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends make gcc libc6-dev
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "bench-rs.sh: python3 is needed to pick free ports" >&2
    exit 1
fi

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
BENCH_DIR="$ROOT/crates/chronik-bench"
BENCH_BIN="$BENCH_DIR/target/release/chronik-bench"
step "building crates/chronik-bench (release; the first build compiles librdkafka, minutes)"
build_start=$SECONDS
(cd "$BENCH_DIR" && nice -n 10 cargo build --release --locked)
echo "chronik-bench build: $((SECONDS - build_start)) s"

BIN="$ROOT/target/release/chronik-server"
if [ ! -x "$BIN" ]; then
    step "building chronik-server (release)"
    nice -n 10 cargo build --release -p chronik-server
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/chronik-bench-rs.XXXXXX")"
DATA="$WORK/data"
SERVER_LOG="$WORK/server.log"
SERVER_PID=""
SERVER_RC=0

cleanup() {
    local rc=$?
    stop_server
    if [ -f "$SERVER_LOG" ]; then
        cp "$SERVER_LOG" "$SERVER_LOG_OUT" 2>/dev/null || true
        if [ "$rc" -ne 0 ]; then
            echo "bench-rs.sh: failed (status $rc); last lines of the server log:" >&2
            tail -n 30 "$SERVER_LOG" >&2 || true
        fi
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r KAFKA_PORT HTTP_PORT < <(python3 - <<'EOF'
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
# shellcheck disable=SC2046
env $(env | sed -n 's/^\(CHRONIK_[A-Za-z0-9_]*\)=.*/-u \1/p') NO_COLOR=1 \
    "$WORK/chronik-server" --node-id 1 --data-dir "$DATA" --kafka-addr "$BOOTSTRAP" --http-addr "$HTTP" \
    </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

# Wait (bounded) for /health/ready, failing fast if the server exits (e.g. a port taken in the
# meantime: then whatever answers on that port is not our server).
python3 - "$HTTP" "$SERVER_PID" <<'EOF'
import sys, time, urllib.request
http, pid = sys.argv[1], int(sys.argv[2])
deadline = time.perf_counter() + 30
def exited():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True
while True:
    if exited():
        sys.exit("server exited before becoming ready")
    try:
        with urllib.request.urlopen(f"http://{http}/health/ready", timeout=2) as r:
            if r.status == 200 and not exited():
                break
    except OSError:
        pass
    if time.perf_counter() > deadline:
        sys.exit("server not ready within 30 s")
    time.sleep(0.05)  # poll interval of a condition with a deadline
EOF
if command -v ss >/dev/null 2>&1 && ! ss -ltnp "sport = :$KAFKA_PORT" | grep -q "pid=$SERVER_PID,"; then
    echo "bench-rs.sh: port $KAFKA_PORT is not served by our server (pid $SERVER_PID)" >&2
    exit 1
fi

busiest() {
    # The busiest other processes right now (this machine is shared): "comm cpu%, ...".
    ps -eo pcpu=,comm= --sort=-pcpu 2>/dev/null | head -n 5 \
        | awk '{printf "%s%s %s%%", (NR>1?", ":""), $2, $1}'
}

step "chronik-bench --matrix standard (load average: $(cut -d' ' -f1-3 /proc/loadavg); busiest: $(busiest))"
LABELS=(
    --label "server_binary=$BIN"
    --label "server_binary_mtime_utc=$(date -u -r "$WORK/chronik-server" +%Y-%m-%dT%H:%M:%SZ)"
    --label "server_binary_sha256=$(sha256sum "$WORK/chronik-server" | cut -c1-16)"
    --label "git_head=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    --label "git_crates_modified=$([ -n "$(git -C "$ROOT" status --porcelain -- crates/chronik-types crates/chronik-protocol crates/chronik-storage crates/chronik-group crates/chronik-broker crates/chronik-server Cargo.toml Cargo.lock 2>/dev/null)" ] && echo yes || echo no)"
    --label "busiest_processes_at_start=$(busiest)"
    --label "script=scripts/bench-rs.sh --duration $DURATION --fixed-duration $FIXED_DURATION --value-bytes $VALUE_BYTES --producers $PRODUCERS --consumers $CONSUMERS --disk-seconds $DISK_SECONDS"
)
"$BENCH_BIN" --bootstrap "$BOOTSTRAP" --matrix standard \
    --matrix-duration-s "$DURATION" --fixed-duration-s "$FIXED_DURATION" \
    --value-bytes "$VALUE_BYTES" --producers "$PRODUCERS" --consumers "$CONSUMERS" \
    --disk-dir "$WORK/disk" --disk-seconds "$DISK_SECONDS" \
    --server-pid "$SERVER_PID" --metrics-url "http://$HTTP/metrics" \
    "${LABELS[@]}" --json "$JSON_OUT" "${EXTRA[@]}"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); busiest: $(busiest)"

step "stopping the server (SIGTERM)"
stop_server
warns="$(grep -cE ' (WARN|ERROR) ' "$SERVER_LOG" || true)"
echo "server log: ${warns:-0} WARN/ERROR lines (copied to $SERVER_LOG_OUT)"
if [ "$SERVER_RC" -ne 0 ]; then exit 1; fi
echo "server stopped cleanly; results in $JSON_OUT"
