# Shared setup for scripts/test.sh and scripts/bench.sh: kcat and the Python .venv.
#
# Source it (do not run it) after `set -euo pipefail` and with ROOT set to the repository root.
# It defines:
#   step MSG...          print a "==> MSG" heading
#   setup_kcat           install kcat with apt-get when missing
#   setup_netns_tools    install ip (iproute2) and nft (nftables) when missing: the chaos
#                        suite's network partitions (network namespaces, packet filter)
#   setup_venv           create $ROOT/.venv and install tests/requirements.txt into it, only when
#                        the venv is missing or broken, or the requirements (or Python) changed
# and the variables SUDO, VENV, REQS, STAMP and PYTHON_BIN.
# Works on a fresh Debian machine (root, python3.11, pip) and is idempotent.

: "${ROOT:?scripts/lib/setup.sh needs ROOT set to the repository root}"

step() { printf '\n==> %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

VENV="$ROOT/.venv"
REQS="$ROOT/tests/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PYTHON_BIN="${PYTHON:-}"
if [ -z "$PYTHON_BIN" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON_BIN=python3.11; else PYTHON_BIN=python3; fi
fi

# --- system packages ----------------------------------------------------------
setup_kcat() {
    if ! command -v kcat >/dev/null 2>&1; then
        step "installing kcat"
        $SUDO apt-get update
        $SUDO apt-get install -y --no-install-recommends kcat
    fi
}

setup_netns_tools() {
    local pkgs=()
    command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
    command -v nft >/dev/null 2>&1 || pkgs+=(nftables)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        step "installing ${pkgs[*]}"
        $SUDO apt-get update
        $SUDO apt-get install -y --no-install-recommends "${pkgs[@]}"
    fi
}

# --- python virtualenv ----------------------------------------------------------
setup_venv() {
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
    local want
    want="$( { sha256sum "$REQS"; "$VENV/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
        step "installing python test dependencies"
        rm -f "$STAMP"
        "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQS"
        echo "$want" > "$STAMP"
    fi
}

# --- a benchmark's own server -----------------------------------------------------
# stop_server: SIGTERM the server in $SERVER_PID, wait (bounded) for its clean shutdown, SIGKILL only
# if it never comes; leaves its exit status in SERVER_RC. Messages name $SCRIPT_NAME.
stop_server() {
    if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        local rc=0
        timeout 30 tail --pid="$SERVER_PID" -f /dev/null || {
            echo "${SCRIPT_NAME:-script}: server did not stop within 30 s of SIGTERM; killing it" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        }
        wait "$SERVER_PID" 2>/dev/null || rc=$?
        SERVER_RC=$rc
        if [ "$rc" -ne 0 ]; then
            echo "${SCRIPT_NAME:-script}: server exited with status $rc after SIGTERM" >&2
        fi
    fi
    SERVER_PID=""
}
