#!/usr/bin/env bash
# The single entry point that runs every check and test of Chronik.
#
# Works on a fresh Debian machine (root, python3.11, pip, cargo) and is
# idempotent: system and Python dependencies are installed only when missing
# or when tests/requirements.txt changed.
#
# Steps: kcat -> .venv -> cargo fmt --check -> clippy -D warnings ->
#        cargo test -> cargo build --release -> simulator (500 seeds from SIM_SEED,
#        default 1) -> pytest black-box suite -> chaos suite in quick mode (fixed
#        seed; CHAOS_SEED=N for another).
# Extra arguments are passed to pytest, e.g. `scripts/test.sh -k kcat`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# step, kcat and .venv setup are shared with scripts/bench.sh.
# shellcheck source=scripts/lib/setup.sh
. "$ROOT/scripts/lib/setup.sh"

setup_kcat
setup_venv

# --- rust checks -----------------------------------------------------------------
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace

step "cargo build --release"
cargo build --release

# --- deterministic simulation --------------------------------------------------------
# Each seed is one run of a partition's Raft group under seeded faults (docs/simulation.md);
# a failure prints the seed and the command that replays it.
step "simulator: ${SIM_SEEDS:-500} seeds from ${SIM_SEED:-1}"
"$ROOT/target/release/chronik-sim" --seed "${SIM_SEED:-1}" --seeds "${SIM_SEEDS:-500}" | grep -v ": ok$"

# --- black-box suite ---------------------------------------------------------------
export CHRONIK_BIN="$ROOT/target/release/chronik-server"
step "pytest black-box suite against $CHRONIK_BIN"
"$VENV/bin/python" -m pytest tests/ -v --timeout=240 "$@"

# --- chaos suite, quick mode ---------------------------------------------------------
# A fixed seed keeps CI's fault schedule reproducible; CHAOS_SEED=N picks another.
step "chaos suite (quick, seed ${CHAOS_SEED:-1})"
bash "$ROOT/scripts/chaos.sh" --quick --seed "${CHAOS_SEED:-1}"
