#!/usr/bin/env bash
# Builds every plugin in plugins_wasm/ from source into plugins_wasm/dist/<name>.wasm and
# prints path, size and sha256 of each. CI runs it; so can you, from any directory.
#
#   Rust plugins: Debian's rustc 1.63 with the wasm32 std (apt-get install rustc cargo
#                 libstd-rust-dev-wasm32); crates depend only on std, so --offline.
#   AssemblyScript plugins: the repo's npm workspace (assemblyscript 0.28, package-lock.json).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
dist="$here/dist"
cargo=${CARGO:-/usr/bin/cargo}
export RUSTC=${RUSTC:-/usr/bin/rustc}
# one target dir: the SDK crate is compiled once for both Rust plugins
export CARGO_TARGET_DIR="$here/target"

rust_plugins=(request-guard json-redact)
as_plugins=(signed-request form-to-json)

die() { echo "build.sh: $*" >&2; exit 1; }

[ -x "$cargo" ] || die "cargo not found at $cargo (apt-get install cargo)"
[ -x "$RUSTC" ] || die "rustc not found at $RUSTC (apt-get install rustc)"
"$RUSTC" --print sysroot >/dev/null
[ -d "$("$RUSTC" --print sysroot)/lib/rustlib/wasm32-unknown-unknown" ] \
  || die "no wasm32 std for $RUSTC (apt-get install libstd-rust-dev-wasm32)"
command -v npm >/dev/null || die "npm not found (apt-get install npm, or Node 20 from nodejs.org)"

mkdir -p "$dist"

for p in "${rust_plugins[@]}"; do
  "$cargo" build --quiet --offline --release --target wasm32-unknown-unknown \
    --manifest-path "$here/$p/Cargo.toml"
  cp "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/${p//-/_}.wasm" "$dist/$p.wasm"
done

if [ ! -x "$root/node_modules/.bin/asc" ]; then
  (cd "$root" && npm ci --no-audit --no-fund --silent)
fi
for p in "${as_plugins[@]}"; do
  (cd "$here/$p" && "$root/node_modules/.bin/asc" assembly/index.ts --config asconfig.json --target release)
done

printf '%-48s %9s  %s\n' path bytes sha256
for p in "${rust_plugins[@]}" "${as_plugins[@]}"; do
  f="$dist/$p.wasm"
  printf '%-48s %9d  %s\n' "${f#"$root"/}" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
done
