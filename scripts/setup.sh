#!/usr/bin/env bash
# Make a Python that can run edge available as $PYTHON (sourced by the other scripts).
#
# Uses the current python3 when edge and its dependencies already import from this
# checkout (a developer machine); otherwise creates .venv and installs edge into it
# (editable, with the test extras when EDGE_EXTRAS=test). On a fresh Debian 12 as root
# it first installs python3-venv, which Debian ships separately.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EDGE_EXTRAS="${EDGE_EXTRAS:-}"
SPEC="."
[ -n "$EDGE_EXTRAS" ] && SPEC=".[${EDGE_EXTRAS}]"

usable() {
    # $1: a python; true when it imports edge from this checkout with its dependencies
    local mods="edge, trio, httptools, msgspec, yaml, prometheus_client"
    [ "$EDGE_EXTRAS" = "test" ] && mods="$mods, pytest, pytest_trio, httpx"
    "$1" - "$ROOT" <<PY >/dev/null 2>&1
import os, sys
import ${mods}
sys.exit(0 if os.path.dirname(os.path.dirname(os.path.abspath(edge.__file__))) == sys.argv[1] else 1)
PY
}

if [ -n "${PYTHON:-}" ] && usable "$PYTHON"; then
    :
elif command -v python3 >/dev/null && usable "$(command -v python3)"; then
    PYTHON="$(command -v python3)"
elif [ -x "$ROOT/.venv/bin/python" ] && usable "$ROOT/.venv/bin/python"; then
    PYTHON="$ROOT/.venv/bin/python"
else
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "setup: installing python3-venv" >&2
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip
        else
            echo "setup: python3 with the venv module is required (apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    echo "setup: creating $ROOT/.venv and installing edge ($SPEC)" >&2
    python3 -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/pip" install -q --upgrade pip
    (cd "$ROOT" && "$ROOT/.venv/bin/pip" install -q -e "$SPEC")
    PYTHON="$ROOT/.venv/bin/python"
fi
export PYTHON
