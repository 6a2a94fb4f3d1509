#!/usr/bin/env bash
# Chaos tests: real clients against real chronik-server processes under faults.
#
#   scripts/chaos.sh [--quick|--long] [--seed N] [--keep-all] [SCENARIO...]
#
#   --quick      short scenarios, about 5 minutes in all (the default)
#   --long       long scenarios with many more faults, plus "mixed", the disk and the other
#                cluster scenarios (about an hour)
#   --seed N     seed of the fault schedules (default: random; always printed, so a run's
#                schedule can be replayed)
#   --keep-all   also keep the histories of passing scenarios
#   SCENARIO     baseline, kill9-repeated, pause, rolling-restart, fsync-eio, disk-full, slow-disk,
#                corrupt-segment, mixed (one node); cluster-kill-leader, cluster-kill-follower,
#                cluster-pause-leader, cluster-rolling-restart, cluster-kill-random,
#                cluster-kill-all, cluster-slow-follower, cluster-fsync-eio, cluster-disk-full,
#                cluster-corrupt-replica (three nodes);
#                cluster-partition-leader, cluster-partition-node, cluster-partition-bridge,
#                cluster-partition-flap (three nodes in network namespaces: needs root);
#                a+b combines the faults of a and b (e.g. kill9-repeated+pause). Default: see
#                --list for what --quick and --long run
#   --list       list the scenarios
#
# Builds nothing: uses target/release/chronik-server (or $CHRONIK_BIN), copied per scenario so a
# rebuild during the run does not matter. Each scenario starts from empty data dirs and free
# loopback ports (a cluster scenario: three nodes with Raft ports and peers; a partition scenario:
# three network namespaces of its own, removed at the end). Prints a table
# (scenario | result | workload counts | anomalies with counts); the JSON history (with the
# checker's report) and the logs of every scenario that did not pass go to target/chaos/.
# Re-check a saved history with:
#   .venv/bin/python -m chaos.run --check target/chaos/<file>.json
# Exit status: 0 if every scenario passed, non-zero otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() {
    sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick|--long|--keep-all|--list) ARGS+=("$1"); shift ;;
        --seed)
            if ! [[ "${2:-}" =~ ^[0-9]+$ ]]; then
                echo "chaos.sh: --seed takes a non-negative integer, got '${2:-}'" >&2; exit 2
            fi
            ARGS+=("--seed" "$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "chaos.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done

BIN="${CHRONIK_BIN:-$ROOT/target/release/chronik-server}"
if [ ! -x "$BIN" ]; then
    echo "chaos.sh: $BIN not found; run \`cargo build --release\` first (chaos.sh builds nothing)" >&2
    exit 1
fi

# step, and the .venv shared with scripts/test.sh (kcat is not needed here); ip and nft for the
# network-partition scenarios.
# shellcheck source=scripts/lib/setup.sh
. "$ROOT/scripts/lib/setup.sh"
setup_venv
setup_netns_tools

mkdir -p "$ROOT/target/chaos"

# The run gets its own process group (setsid) so that cleanup can kill everything it started
# (servers, even SIGSTOPped ones, and client processes) in one go, whatever state it is in.
RUN_PID=""
cleanup() {
    local rc=$?
    if [ -n "$RUN_PID" ]; then
        if kill -0 "$RUN_PID" 2>/dev/null; then
            kill -TERM -- "-$RUN_PID" 2>/dev/null || true
            timeout 10 tail --pid="$RUN_PID" -f /dev/null 2>/dev/null || true
        fi
        kill -KILL -- "-$RUN_PID" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "chaos run against $BIN"
setsid "$VENV/bin/python" -m chaos.run --binary "$BIN" "${ARGS[@]}" &
RUN_PID=$!
RC=0
wait "$RUN_PID" || RC=$?
exit "$RC"
