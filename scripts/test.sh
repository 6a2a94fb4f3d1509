#!/usr/bin/env bash
# The single entry point that runs every check and test of Chronik.
#
# Works on a fresh Debian machine (root, python3.11, pip, cargo) and is
# idempotent: system and Python dependencies are installed only when missing
# or when tests/requirements.txt changed.
#
# Steps: kcat -> .venv -> cargo fmt --check -> clippy -D warnings ->
#        cargo test -> cargo build --release -> pytest black-box suite.
# Extra arguments are passed to pytest, e.g. `scripts/test.sh -k kcat`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# --- system packages ----------------------------------------------------------
if ! command -v kcat >/dev/null 2>&1; then
    step "installing kcat"
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends kcat
fi

# --- python virtualenv ----------------------------------------------------------
VENV="$ROOT/.venv"
REQS="$ROOT/tests/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PYTHON_BIN="${PYTHON:-}"
if [ -z "$PYTHON_BIN" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON_BIN=python3.11; else PYTHON_BIN=python3; fi
fi

# A venv whose interpreter no longer runs (e.g. copied between machines) is rebuilt.
if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    step "removing broken virtualenv $VENV"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    step "creating virtualenv $VENV"
    if ! "$PYTHON_BIN" -m venv "$VENV"; then
        # Debian's system python ships venv/ensurepip separately.
        rm -rf "$VENV"
        $SUDO apt-get update
        $SUDO apt-get install -y --no-install-recommends python3-venv \
            || $SUDO apt-get install -y --no-install-recommends "$(basename "$PYTHON_BIN")-venv"
        "$PYTHON_BIN" -m venv "$VENV"
    fi
fi
want="$( { sha256sum "$REQS"; "$VENV/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    step "installing python test dependencies"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQS"
    echo "$want" > "$STAMP"
fi

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

# --- black-box suite ---------------------------------------------------------------
export CHRONIK_BIN="$ROOT/target/release/chronik-server"
step "pytest black-box suite against $CHRONIK_BIN"
"$VENV/bin/python" -m pytest tests/ -v --timeout=240 "$@"
