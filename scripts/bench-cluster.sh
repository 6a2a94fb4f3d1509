#!/usr/bin/env bash
# A single node and a local N-node cluster (default 3), measured one after the other in ONE run,
# and the ratio of the two: see docs/benchmarks.md ("Single node vs three nodes").
#
#   scripts/bench-cluster.sh [--nodes N] [--duration S] [--fixed-duration S] [--fixed-fraction F]
#                            [--fixed-linger-ms MS] [--partitions P] [--value-bytes B]
#                            [--consumers N] [--no-chronik-bench] [--out DIR]
#
# Workload: 1 topic x P partitions (16), B-byte values (1024), acks=all, idempotence off, one
# producer, linger.ms 5, batch.size 1000000: as fast as possible for S s (10), then at a fixed
# rate of F (0.5) x the SINGLE node's maximum (the same rate for both targets), linger.ms MS (5),
# for S s (10) for produce p50/p99. Each target on fresh temp data dirs (under $TMPDIR, default
# /tmp), free loopback ports and a private copy of target/release/chronik-server; every node's
# /health/ready is polled (bounded) before the load starts.
#   1. the single node: chronik-bench (Rust, librdkafka; N live consumers, 1, check that every
#      acked message arrives once and in order) max + fixed rate, as a reference for the client;
#      then the same two with confluent-kafka (bench/cluster_bench.py produce, produce only,
#      replication factor 1);
#   2. the cluster of N nodes (3; each names the others with --peer): the confluent-kafka pair
#      on a topic with replication factor min(3, N), given explicitly; then once more at F x the
#      CLUSTER's own maximum (its latency at a load it can sustain).
# (A fixed-rate phase that the broker cannot keep up with stops sending after 2 x S s.)
# chronik-bench is not run on the cluster by this script (its phases here are the single node's
# client reference); `chronik-bench --replication-factor 3 --bootstrap <a node>` measures a
# running cluster by hand.
# Meanwhile bench/cluster_bench.py sample records each server's CPU (/proc) and /metrics once a
# second (and /cluster of each node). Prints the tables and the cluster / single ratios; writes
# everything to --out DIR (default target/bench/cluster-<UTC time>/: JSON reports, each phase's
# output, samples, summary.json, the servers' logs). Servers are stopped with SIGTERM (SIGKILL
# after 30 s) and the temp dir removed on any exit. Builds nothing but, when missing,
# target/release/chronik-server; chronik-bench must be built already (scripts/bench-rs.sh does).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() {
    sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

NODES=3
DURATION=10
FIXED_DURATION=10
FIXED_FRACTION=0.5
FIXED_LINGER=5
PARTITIONS=16
VALUE_BYTES=1024
CONSUMERS=1
CHRONIK_BENCH=1
OUT=""
ARGS_GIVEN="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) NODES="${2:?--nodes needs a value}"; shift 2 ;;
        --duration) DURATION="${2:?--duration needs a value}"; shift 2 ;;
        --fixed-duration) FIXED_DURATION="${2:?--fixed-duration needs a value}"; shift 2 ;;
        --fixed-fraction) FIXED_FRACTION="${2:?--fixed-fraction needs a value}"; shift 2 ;;
        --fixed-linger-ms) FIXED_LINGER="${2:?--fixed-linger-ms needs a value}"; shift 2 ;;
        --partitions) PARTITIONS="${2:?--partitions needs a value}"; shift 2 ;;
        --value-bytes) VALUE_BYTES="${2:?--value-bytes needs a value}"; shift 2 ;;
        --consumers) CONSUMERS="${2:?--consumers needs a value}"; shift 2 ;;
        --no-chronik-bench) CHRONIK_BENCH=0; shift ;;
        --out) OUT="${2:?--out needs a value}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-cluster.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
for v in "$DURATION" "$FIXED_DURATION" "$PARTITIONS" "$VALUE_BYTES"; do
    if ! [[ "$v" =~ ^[1-9][0-9]*$ ]]; then
        echo "bench-cluster.sh: --duration, --fixed-duration, --partitions and --value-bytes take positive integers, got '$v'" >&2
        exit 2
    fi
done
if ! [[ "$NODES" =~ ^[2-9]$ ]]; then
    echo "bench-cluster.sh: --nodes takes 2..9, got '$NODES'" >&2; exit 2
fi
if ! [[ "$CONSUMERS" =~ ^[0-9]+$ && "$FIXED_LINGER" =~ ^[0-9]+$ ]]; then
    echo "bench-cluster.sh: --consumers and --fixed-linger-ms take non-negative integers" >&2; exit 2
fi
if ! [[ "$FIXED_FRACTION" =~ ^(0?\.[0-9]+|1(\.0*)?)$ ]]; then
    echo "bench-cluster.sh: --fixed-fraction takes a number in (0, 1], got '$FIXED_FRACTION'" >&2; exit 2
fi

STAMP_UTC="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${OUT:-$ROOT/target/bench/cluster-$STAMP_UTC}"
mkdir -p "$OUT/single" "$OUT/cluster"
OUT="$(cd "$OUT" && pwd)"

# step, SUDO, setup_venv and stop_server are shared with the other scripts.
# shellcheck source=scripts/lib/setup.sh
. "$ROOT/scripts/lib/setup.sh"
SCRIPT_NAME=bench-cluster.sh

BENCH_BIN="$ROOT/crates/chronik-bench/target/release/chronik-bench"
if [ "$CHRONIK_BENCH" = 1 ] && [ ! -x "$BENCH_BIN" ]; then
    echo "bench-cluster.sh: $BENCH_BIN is missing: cd crates/chronik-bench && cargo build --release (or run scripts/bench-rs.sh once)" >&2
    exit 1
fi
BIN="$ROOT/target/release/chronik-server"
if [ ! -x "$BIN" ]; then
    step "building chronik-server (release)"
    nice -n 10 cargo build --release -p chronik-server
fi
setup_venv   # confluent-kafka, as for scripts/test.sh
PY="$VENV/bin/python"
HELPER="$ROOT/bench/cluster_bench.py"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/chronik-bench-cluster.XXXXXX")"
cp -p "$BIN" "$WORK/chronik-server"   # a private copy: a rebuild during the run changes nothing
PIDS=()          # servers of the current target
LOGS=()
SAMPLER_PID=""
FAILED=0

stop_target() {
    if [ -n "$SAMPLER_PID" ]; then
        kill -TERM "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID=""
    fi
    # SIGTERM every node first (a cluster shuts down together), then wait for each (bounded).
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        SERVER_PID="$pid"
        SERVER_RC=0
        stop_server
        if [ "$SERVER_RC" -ne 0 ]; then FAILED=1; fi
    done
    PIDS=()
}

cleanup() {
    local rc=$?
    stop_target
    local f
    for f in "$WORK"/*.log; do
        [ -f "$f" ] && cp "$f" "$OUT/" 2>/dev/null
    done
    if [ "$rc" -ne 0 ]; then
        echo "bench-cluster.sh: failed (status $rc); logs in $OUT" >&2
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free loopback ports for every listener of the run (the sockets are closed before the servers
# bind them; each server's Kafka port is checked against its pid below).
read -r -a PORTS < <(python3 - "$((2 + 3 * NODES))" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*[s.getsockname()[1] for s in socks])
EOF
)

# start_node NAME ARGS...: start a copy of the server (flags only: ambient CHRONIK_* dropped).
start_node() {
    local name="$1"; shift
    # shellcheck disable=SC2046
    env $(env | sed -n 's/^\(CHRONIK_[A-Za-z0-9_]*\)=.*/-u \1/p') NO_COLOR=1 \
        "$WORK/chronik-server" "$@" </dev/null >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    LOGS+=("$WORK/$name.log")
}

# wait_ready HTTP:PID...: poll each node's /health/ready (bounded), failing fast if one exits.
wait_ready() {
    python3 - "$STARTED_AT" "$@" <<'EOF'
import sys, time, urllib.request
started_at = float(sys.argv.pop(1))
nodes = [a.rsplit(":", 1) for a in sys.argv[1:]]  # "127.0.0.1:PORT:PID"
nodes = [(h, int(p)) for h, p in nodes]
deadline = time.perf_counter() + 60
def exited(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True
t0 = time.perf_counter()
pending = dict(nodes)
while pending:
    for http, pid in list(pending.items()):
        if exited(pid):
            sys.exit(f"server {http} (pid {pid}) exited before becoming ready")
        try:
            with urllib.request.urlopen(f"http://{http}/health/ready", timeout=2) as r:
                if r.status == 200:
                    del pending[http]
        except OSError:
            pass
    if pending and time.perf_counter() > deadline:
        sys.exit(f"not ready within 60 s: {sorted(pending)}")
    if pending:
        time.sleep(0.05)  # poll interval of a condition with a deadline
print(f"all ready {time.time() - started_at:.2f} s after the start")
EOF
}

check_port() {  # check_port PORT PID
    if command -v ss >/dev/null 2>&1 && ! ss -ltnp "sport = :$1" | grep -q "pid=$2,"; then
        echo "bench-cluster.sh: port $1 is not served by our server (pid $2)" >&2
        exit 1
    fi
}

busiest() {
    ps -eo pcpu=,comm= --sort=-pcpu 2>/dev/null | head -n 5 \
        | awk '{printf "%s%s %s%%", (NR>1?", ":""), $2, $1}'
}

LABELS=(
    --label "server_binary_mtime_utc=$(date -u -r "$WORK/chronik-server" +%Y-%m-%dT%H:%M:%SZ)"
    --label "server_binary_sha256=$(sha256sum "$WORK/chronik-server" | cut -c1-16)"
    --label "git_head=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    --label "script=scripts/bench-cluster.sh $ARGS_GIVEN"
)

# bench PHASE TARGET BOOTSTRAP [EXTRA FLAGS]: one chronik-bench workload; its status is kept.
bench() {
    local phase="$1" target="$2" boot="$3"; shift 3
    local rc=0
    "$BENCH_BIN" --bootstrap "$boot" --topic "bench-$target-$phase-$STAMP_UTC" \
        --topic-partitions "$PARTITIONS" --value-bytes "$VALUE_BYTES" --acks all --idempotence false \
        --producers 1 --consumers "$CONSUMERS" --read-back false --loopback-seconds 0 \
        --progress-s 2 "${LABELS[@]}" --label "target=$target" --json "$OUT/$target/$phase.json" "$@" \
        >"$OUT/$target/$phase.txt" 2>"$OUT/$target/$phase.err" || rc=$?
    grep -E '^  (\[|read-back)|produced|error' "$OUT/$target/$phase.err" | tail -n 3 || true
    if [ "$rc" -ne 0 ]; then
        echo "bench-cluster.sh: chronik-bench $target $phase exited with status $rc:" >&2
        tail -n 5 "$OUT/$target/$phase.err" >&2
        FAILED=1
    fi
}

# pyprod PHASE TARGET BOOTSTRAP [EXTRA FLAGS]
pyprod() {
    local phase="$1" target="$2" boot="$3"; shift 3
    local rc=0
    "$PY" "$HELPER" produce --bootstrap "$boot" --topic "py-$target-$phase-$STAMP_UTC" \
        --partitions "$PARTITIONS" --value-bytes "$VALUE_BYTES" \
        --json "$OUT/$target/$phase.json" "$@" 2>"$OUT/$target/$phase.err" || rc=$?
    grep -v ' is unknown (partition_cnt' "$OUT/$target/$phase.err" | tail -n 3 || true
    if [ "$rc" -ne 0 ]; then
        echo "bench-cluster.sh: $target $phase exited with status $rc" >&2
        FAILED=1
    fi
}

rate_of() {  # rate_of JSON KIND: FIXED_FRACTION x the produce msg/s of a max phase
    python3 - "$1" "$2" "$FIXED_FRACTION" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
v = r["runs"][0]["produce"]["msgs_per_s"] if sys.argv[2] == "bench" else r["msgs_per_s"]
print(max(1, round(v * float(sys.argv[3]))))
EOF
}

run_phases() {  # run_phases TARGET BOOTSTRAP RF
    local target="$1" boot="$2" rf="$3"
    if [ "$target" = single ] && [ "$CHRONIK_BENCH" = 1 ]; then
        step "$target: chronik-bench max throughput, ${DURATION} s (load average $(cut -d' ' -f1-3 /proc/loadavg); busiest: $(busiest))"
        bench bench-max "$target" "$boot" --duration-s "$DURATION" --linger-ms 5
        BENCH_RATE="$(rate_of "$OUT/single/bench-max.json" bench)"
        step "$target: chronik-bench fixed rate $BENCH_RATE msg/s, linger.ms $FIXED_LINGER, ${FIXED_DURATION} s"
        bench bench-fixed "$target" "$boot" --duration-s "$FIXED_DURATION" --rate "$BENCH_RATE" --linger-ms "$FIXED_LINGER"
    fi
    step "$target: confluent-kafka max throughput, RF $rf, ${DURATION} s (load average $(cut -d' ' -f1-3 /proc/loadavg); busiest: $(busiest))"
    pyprod py-max "$target" "$boot" --replication-factor "$rf" --seconds "$DURATION" --linger-ms 5
    if [ -z "${PY_RATE:-}" ]; then PY_RATE="$(rate_of "$OUT/single/py-max.json" py)"; fi
    step "$target: confluent-kafka fixed rate $PY_RATE msg/s (${FIXED_FRACTION} x the single node's maximum), RF $rf, linger.ms $FIXED_LINGER, ${FIXED_DURATION} s"
    pyprod py-fixed "$target" "$boot" --replication-factor "$rf" --seconds "$FIXED_DURATION" --rate "$PY_RATE" --linger-ms "$FIXED_LINGER"
    if [ "$target" = cluster ]; then
        local own
        own="$(rate_of "$OUT/cluster/py-max.json" py)"
        step "$target: confluent-kafka fixed rate $own msg/s (${FIXED_FRACTION} x the cluster's own maximum), RF $rf, linger.ms $FIXED_LINGER, ${FIXED_DURATION} s"
        pyprod py-fixed-own "$target" "$boot" --replication-factor "$rf" --seconds "$FIXED_DURATION" --rate "$own" --linger-ms "$FIXED_LINGER"
    fi
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); busiest: $(busiest)"
}

log_report() {  # WARN/ERROR lines of the current target's logs
    local f n
    for f in "${LOGS[@]}"; do
        n="$(grep -cE ' (WARN|ERROR) ' "$f" || true)"
        echo "  $(basename "$f"): ${n:-0} WARN/ERROR lines"
        grep -E ' (WARN|ERROR) ' "$f" | sed -E 's/^[^ ]+ +//' | cut -c1-220 | sort | uniq -c | sort -rn | head -n 8 || true
    done
    LOGS=()
}

step "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r); data dirs on $(df -PT "$WORK" | awk 'NR==2 {print $1", "$2}')"
echo "chronik-bench $("$BENCH_BIN" --version | cut -d' ' -f2), server $BIN (sha256 $(sha256sum "$WORK/chronik-server" | cut -c1-16), mtime $(date -u -r "$WORK/chronik-server" +%H:%M:%SZ)), HEAD $(git -C "$ROOT" rev-parse --short HEAD)"
RUN_START=$SECONDS

# --- 1. the single node -----------------------------------------------------------------
K="${PORTS[0]}"; H="${PORTS[1]}"
step "single node: kafka 127.0.0.1:$K, http 127.0.0.1:$H"
STARTED_AT="$(date +%s.%N)"
start_node single --node-id 1 --data-dir "$WORK/single" --kafka-addr "127.0.0.1:$K" --http-addr "127.0.0.1:$H"
wait_ready "127.0.0.1:$H:${PIDS[0]}"
check_port "$K" "${PIDS[0]}"
"$PY" "$HELPER" sample --out "$OUT/single/samples.jsonl" --node "single=${PIDS[0]},127.0.0.1:$H" &
SAMPLER_PID=$!
run_phases single "127.0.0.1:$K" 1
step "single node: stopping (SIGTERM)"
stop_target
log_report

# --- 2. the cluster ------------------------------------------------------------------------
BOOT=""; SAMPLE_ARGS=(); READY=()
for i in $(seq 1 "$NODES"); do
    b=$((2 + 3 * (i - 1)))
    KP[$i]="${PORTS[$b]}"; HP[$i]="${PORTS[$((b + 1))]}"; RP[$i]="${PORTS[$((b + 2))]}"
    BOOT="${BOOT:+$BOOT,}127.0.0.1:${KP[$i]}"
done
step "cluster of $NODES nodes: bootstrap $BOOT"
STARTED_AT="$(date +%s.%N)"
for i in $(seq 1 "$NODES"); do
    peers=()
    for j in $(seq 1 "$NODES"); do
        [ "$j" = "$i" ] || peers+=(--peer "$j=127.0.0.1:${RP[$j]}")
    done
    start_node "node$i" --node-id "$i" --data-dir "$WORK/node$i" --kafka-addr "127.0.0.1:${KP[$i]}" \
        --http-addr "127.0.0.1:${HP[$i]}" --raft-addr "127.0.0.1:${RP[$i]}" "${peers[@]}"
done
for i in $(seq 1 "$NODES"); do
    READY+=("127.0.0.1:${HP[$i]}:${PIDS[$((i - 1))]}")
    SAMPLE_ARGS+=(--node "node$i=${PIDS[$((i - 1))]},127.0.0.1:${HP[$i]}")
done
wait_ready "${READY[@]}"
for i in $(seq 1 "$NODES"); do check_port "${KP[$i]}" "${PIDS[$((i - 1))]}"; done
"$PY" "$HELPER" sample --cluster --out "$OUT/cluster/samples.jsonl" "${SAMPLE_ARGS[@]}" &
SAMPLER_PID=$!
run_phases cluster "$BOOT" "$((NODES < 3 ? NODES : 3))"
step "cluster: stopping (SIGTERM to every node)"
stop_target
log_report

step "summary (phases took $((SECONDS - RUN_START)) s in all)"
"$PY" "$HELPER" summary --run-dir "$OUT" --json "$OUT/summary.json" | tee "$OUT/summary.txt"
if [ "$FAILED" -ne 0 ]; then
    echo "bench-cluster.sh: a phase failed or a server did not stop cleanly (see above); results in $OUT" >&2
    exit 1
fi
echo "results in $OUT"
