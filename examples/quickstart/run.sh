#!/usr/bin/env bash
# Start the demo upstream (127.0.0.1:9081) and edge on the quickstart configuration
# (proxy on 127.0.0.1:9080, admin on 127.0.0.1:9090, one worker). Ctrl-C stops both.
#
# Uses $PYTHON (set by scripts/quickstart.sh) or python3. Ports can be moved with
# EDGE_PORT, EDGE_ADMIN_PORT and DEMO_PORT (the configuration expects DEMO_PORT=9081).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
EDGE_PORT="${EDGE_PORT:-9080}"
EDGE_ADMIN_PORT="${EDGE_ADMIN_PORT:-9090}"
DEMO_PORT="${DEMO_PORT:-9081}"
STATE_DIR="${EDGE_STATE_DIR:-$ROOT/.edge-state/quickstart}"

"$PYTHON" "$HERE/demo_upstream.py" --host 127.0.0.1 --port "$DEMO_PORT" &
demo_pid=$!
edge_pid=""
cleanup() {
    [ -n "$edge_pid" ] && kill -TERM "$edge_pid" 2>/dev/null && wait "$edge_pid" 2>/dev/null
    kill -TERM "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PYTHON" -m edge run \
    --config "$HERE/edge.yaml" \
    --listen "127.0.0.1:$EDGE_PORT" \
    --admin "127.0.0.1:$EDGE_ADMIN_PORT" \
    --workers 1 \
    --state-dir "$STATE_DIR" &
edge_pid=$!

# wait (bounded) for readiness so the printed URL answers at once
for _ in $(seq 1 150); do
    if ! kill -0 "$edge_pid" 2>/dev/null; then
        wait "$edge_pid"
        exit $?
    fi
    if curl -fsS "http://127.0.0.1:$EDGE_ADMIN_PORT/readyz" >/dev/null 2>&1; then
        cat >&2 <<MSG

  edge is ready. Try:
    curl -i http://127.0.0.1:$EDGE_PORT/api/hello
    curl    http://127.0.0.1:$EDGE_ADMIN_PORT/status
    curl    http://127.0.0.1:$EDGE_ADMIN_PORT/metrics
  Edit $HERE/edge.yaml and save: edge reloads it. Ctrl-C stops.

MSG
        break
    fi
    sleep 0.2
done
wait "$edge_pid"
