#!/usr/bin/env bash
# Install the system tools the test suite drives (Debian 12, as root), and the npm
# packages pinned by package-lock.json. Idempotent: does nothing when all is there.
#
# Tools: rustc/cargo/libstd-rust-dev-wasm32 (Rust SDK and plugins), wabt (wat2wasm),
# wrk and nginx-light (benchmark peer), haproxy (PROXY protocol peer), nghttp2-client
# (h2load), shellcheck (bootstrap script), curl/openssl (TLS clients), chromium (the
# CORS browser test), systemd (systemd-analyze verify of the node unit), gcc (edge native
# build: the hot path compiled with mypyc), nodejs/npm (AssemblyScript; it needs Node >= 20).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PACKAGES=(ca-certificates git make gcc python3 python3-venv python3-pip python3-dev
    rustc cargo libstd-rust-dev-wasm32 wabt wrk nginx-light haproxy nghttp2-client
    shellcheck curl openssl chromium)
TOOLS=(gcc /usr/bin/cargo /usr/bin/rustc wat2wasm wrk nginx haproxy h2load shellcheck curl
    openssl chromium)

missing=()
for t in "${TOOLS[@]}"; do
    command -v "$t" >/dev/null 2>&1 || [ -x "$t" ] || missing+=("$t")
done
[ -d /usr/lib/rustlib/wasm32-unknown-unknown ] || missing+=(libstd-rust-dev-wasm32)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "install-deps: missing ${missing[*]}; run as root on Debian 12, or install:" >&2
        echo "  apt-get install ${PACKAGES[*]} nodejs npm" >&2
        exit 1
    fi
    echo "install-deps: installing Debian packages (missing: ${missing[*]})" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    # Debian's nodejs+npm only when no node is present (NodeSource's nodejs ships npm
    # and conflicts with Debian's)
    command -v npm >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
    echo "install-deps: AssemblyScript 0.28 needs Node >= 20 (found ${node_major}); the" >&2
    echo "  AssemblyScript plugins will not build" >&2
fi

# npm packages wherever a lock file pins them (the AssemblyScript SDK and plugins)
while IFS= read -r lock; do
    dir="$(dirname "$lock")"
    if [ ! -d "$dir/node_modules" ] || [ "$lock" -nt "$dir/node_modules" ]; then
        echo "install-deps: npm ci in $dir" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
done < <(find . -name package-lock.json -not -path '*/node_modules/*' -not -path './.venv/*' | sort)
