#!/usr/bin/env bash
# Set up (if needed) and run the gateway on examples/quickstart with its demo upstream.
# Ctrl-C stops both.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/setup.sh
. "$ROOT/scripts/setup.sh"
exec "$ROOT/examples/quickstart/run.sh"
