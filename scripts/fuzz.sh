#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time. Not part of CI.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...] [-- LIBFUZZER_ARGS...]
#
# SECONDS_PER_TARGET defaults to 60; TARGETs default to all of them (`cargo fuzz list`).
# Arguments after `--` go to libFuzzer, e.g. `scripts/fuzz.sh 60 -- -fork=1 -ignore_ooms=1`.
# Installs cargo-fuzz when it is missing. cargo-fuzz needs nightly-only rustc flags for the
# sanitizers; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
# Corpora grow in fuzz/corpus/<target>/, crashes land in fuzz/artifacts/<target>/ (both ignored
# by git). Exits non-zero if a target finds a crash.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"

seconds=60
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
    seconds="$1"
    shift
fi
targets=()
while [[ $# -gt 0 && "$1" != "--" ]]; do
    targets+=("$1")
    shift
done
[[ $# -gt 0 ]] && shift # the "--"
extra=("$@")

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo fuzz list)
fi

failed=()
for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${seconds}s"
    if ! cargo fuzz run "$target" -- -max_total_time="$seconds" ${extra[@]+"${extra[@]}"}; then
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "== crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "== no crashes"
