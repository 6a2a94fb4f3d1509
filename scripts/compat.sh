#!/usr/bin/env bash
# Client compatibility suites against a real chronik-server: see docs/compatibility.md.
#
#   scripts/compat.sh [--all] [--librdkafka [TEST...]] [--aiokafka] [--kafkajs] [--kcat]
#                     [--quick] [--idempotent] [--brokers 1|3] [--ci] [--jobs N] [--update-docs]
#
#   --librdkafka [TEST...]  librdkafka's own integration suite (tests/test-runner), every test
#                           that applies to one plaintext broker, or only the given test numbers
#                           (e.g. 0081 0045) or names. Built once from the rdkafka-sys crate's
#                           librdkafka (crates/chronik-bench pins it) in target/compat/ (~3 min).
#   --aiokafka / --kafkajs / --kcat
#                           the scenarios of compat/<client>_scenarios.* (produce, every codec,
#                           idempotence, consumer group with commits, admin, transactions)
#   --all                   all of the above (the default without a suite option); about 30 min
#   --quick                 librdkafka's quick mode (-Q: fewer messages, non-QUICK sub-tests off)
#   --idempotent            librdkafka suite with every producer idempotent (-P)
#   --brokers 3             librdkafka suite against a three-node cluster per test number (also
#                           runs the tests that need three brokers)
#   --ci                    only the CI subset of librdkafka tests (compat/librdkafka_expectations.py)
#   --jobs N                librdkafka test numbers run at once (default 2; each has its own server)
#   --update-docs           rewrite the generated sections of docs/compatibility.md from the results
#
# Builds nothing in the workspace: uses target/release/chronik-server (or $CHRONIK_BIN), copied per
# run, each suite on fresh data dirs and free loopback ports. Installs what is missing: kcat,
# libzstd-dev and rapidjson-dev (apt-get; the librdkafka build and tests use them), aiokafka
# (target/compat/venv-aiokafka) and kafkajs (target/compat/node, needs node and npm).
# Results: tables on stdout, JSON in target/compat/*-results*.json, logs in target/compat/runs/.
# Exit status: 0 if nothing unexpected failed, non-zero otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() {
    sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

LIBRDKAFKA=0; AIOKAFKA=0; KAFKAJS=0; KCAT=0; UPDATE_DOCS=0
LRK_ARGS=(); LRK_TESTS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --all) LIBRDKAFKA=1; AIOKAFKA=1; KAFKAJS=1; KCAT=1; shift ;;
        --librdkafka)
            LIBRDKAFKA=1; shift
            while [ $# -gt 0 ] && [[ "$1" != -* ]]; do LRK_TESTS+=("$1"); shift; done ;;
        --aiokafka) AIOKAFKA=1; shift ;;
        --kafkajs) KAFKAJS=1; shift ;;
        --kcat) KCAT=1; shift ;;
        --quick|--idempotent|--ci) LRK_ARGS+=("$1"); shift ;;
        --brokers)
            if ! [[ "${2:-}" =~ ^(1|3)$ ]]; then
                echo "compat.sh: --brokers takes 1 or 3, got '${2:-}'" >&2; exit 2
            fi
            LRK_ARGS+=("--brokers" "$2"); shift 2 ;;
        --jobs)
            if ! [[ "${2:-}" =~ ^[1-9][0-9]*$ ]]; then
                echo "compat.sh: --jobs takes a positive integer, got '${2:-}'" >&2; exit 2
            fi
            LRK_ARGS+=("--jobs" "$2"); shift 2 ;;
        --update-docs) UPDATE_DOCS=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compat.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
if [ $((LIBRDKAFKA + AIOKAFKA + KAFKAJS + KCAT)) -eq 0 ]; then
    if [ "$UPDATE_DOCS" -eq 0 ]; then LIBRDKAFKA=1; AIOKAFKA=1; KAFKAJS=1; KCAT=1; fi
fi

BIN="${CHRONIK_BIN:-$ROOT/target/release/chronik-server}"
if [ $((LIBRDKAFKA + AIOKAFKA + KAFKAJS + KCAT)) -gt 0 ] && [ ! -x "$BIN" ]; then
    echo "compat.sh: $BIN not found; run \`cargo build --release\` first (compat.sh builds nothing in the workspace)" >&2
    exit 1
fi
export CHRONIK_BIN="$BIN"

# step, SUDO, PYTHON_BIN and setup_kcat are shared with scripts/test.sh.
# shellcheck source=scripts/lib/setup.sh
. "$ROOT/scripts/lib/setup.sh"

apt_install_missing() {  # apt_install_missing PACKAGE... : install those not installed yet
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        step "installing ${missing[*]}"
        $SUDO apt-get update
        $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
    fi
}

if [ "$KCAT" -eq 1 ]; then setup_kcat; fi
if [ "$LIBRDKAFKA" -eq 1 ]; then
    # The librdkafka build (./configure + make) and its test-runner: compilers, zlib, OpenSSL,
    # zstd (so zstd compression is tested) and RapidJSON (tests 0053, 0098, 0101, 0110).
    apt_install_missing build-essential pkg-config zlib1g-dev libssl-dev libzstd-dev rapidjson-dev
fi
if [ "$KAFKAJS" -eq 1 ] && ! command -v npm >/dev/null 2>&1; then
    echo "compat.sh: the kafkajs scenarios need node and npm (apt-get install nodejs npm)" >&2
    exit 1
fi

mkdir -p "$ROOT/target/compat"

# The run gets its own process group (setsid) so that cleanup can kill everything it started
# (servers, test-runners, client processes) in one go, whatever state it is in.
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

run() {  # run CMD...: in its own process group, waited for; returns its status
    setsid "$@" &
    RUN_PID=$!
    local rc=0
    wait "$RUN_PID" || rc=$?
    RUN_PID=""
    return "$rc"
}

RC=0
if [ "$LIBRDKAFKA" -eq 1 ]; then
    step "librdkafka integration suite against $BIN"
    run "$PYTHON_BIN" -m compat.librdkafka ${LRK_ARGS[@]+"${LRK_ARGS[@]}"} \
        ${LRK_TESTS[@]+"${LRK_TESTS[@]}"} || RC=1
fi
CLIENTS=()
[ "$AIOKAFKA" -eq 1 ] && CLIENTS+=(--aiokafka)
[ "$KAFKAJS" -eq 1 ] && CLIENTS+=(--kafkajs)
[ "$KCAT" -eq 1 ] && CLIENTS+=(--kcat)
if [ ${#CLIENTS[@]} -gt 0 ]; then
    step "client scenarios (${CLIENTS[*]}) against $BIN"
    run "$PYTHON_BIN" -m compat.clients "${CLIENTS[@]}" || RC=1
fi
if [ "$UPDATE_DOCS" -eq 1 ]; then
    step "updating docs/compatibility.md from target/compat/*-results*.json"
    run "$PYTHON_BIN" -m compat.report --write || RC=1
fi
exit "$RC"
