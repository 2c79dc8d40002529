"""Build the SDK-made WASM modules once per test session, cached by source hash.

Rust crates build with Debian's rustc 1.63 (``/usr/bin/cargo``, ``RUSTC=/usr/bin/rustc``)
into one shared target dir; AssemblyScript with the repo's npm workspace ``asc``. A
module is rebuilt only when a source it depends on (its own files, the SDK, the
toolchain version) changed, so the first session pays the compile and later ones do not.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins_wasm"
RUST_SDK = ROOT / "plugin_sdk" / "rust"
AS_SDK = ROOT / "plugin_sdk" / "assemblyscript"
CACHE = Path(tempfile.gettempdir()) / "edge-wasm-build"
CARGO = os.environ.get("CARGO", "/usr/bin/cargo")
RUSTC = os.environ.get("RUSTC", "/usr/bin/rustc")
ASC = ROOT / "node_modules" / ".bin" / "asc"
RUST_PLUGINS = ("request-guard", "json-redact")
AS_PLUGINS = ("signed-request", "form-to-json")
SKIP = {"target", "dist", "node_modules", "Cargo.lock"}


def _digest(*roots: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for root in roots:
        files = (
            [root]
            if root.is_file()
            else sorted(
                p
                for p in root.rglob("*")
                if p.is_file() and not SKIP & set(p.relative_to(root).parts)
            )
        )
        for p in files:
            h.update(str(p.relative_to(ROOT)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:24]


def _cached(key: str, name: str, build: Callable[[Path], None]) -> Path:
    out = CACHE / f"{name}-{key}.wasm"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=CACHE, suffix=".tmp")
    os.close(fd)
    try:
        build(Path(tmp))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stderr}\n{proc.stdout}")


def _cargo(manifest: Path, artifact: str, out: Path, example: str | None = None) -> None:
    env = dict(os.environ, RUSTC=RUSTC, CARGO_TARGET_DIR=str(PLUGINS / "target"))
    cmd = [
        CARGO,
        "build",
        "--quiet",
        "--offline",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "--manifest-path",
        str(manifest),
    ]
    if example:
        cmd += ["--example", example]
    _run(cmd, ROOT, env)
    sub = "examples/" if example else ""
    built = PLUGINS / "target" / "wasm32-unknown-unknown" / "release" / f"{sub}{artifact}.wasm"
    shutil.copyfile(built, out)


def _asc(entry: Path, out: Path, config: Path | None = None) -> None:
    cmd = [str(ASC), str(entry), "-o", str(out), "--path", str(ROOT / "node_modules")]
    if config is not None:
        cmd += ["--config", str(config), "--target", "release"]
    else:
        cmd += [
            "-O3",
            "--exportStart",
            "_initialize",
            "--runtime",
            "incremental",
            "--use",
            "abort=~lib/@edge/proxy-wasm-sdk/assembly/runtime/abortWithLog",
        ]
    _run(cmd, entry.parent)


def plugin(name: str) -> Path:
    """plugins_wasm/<name>, built from source (cached)."""
    src = PLUGINS / name
    if name in RUST_PLUGINS:
        key = _digest(src, RUST_SDK, extra=RUSTC)
        crate = name.replace("-", "_")
        return _cached(key, name, lambda out: _cargo(src / "Cargo.toml", crate, out))
    key = _digest(src, AS_SDK, extra="as")
    entry, conf = src / "assembly" / "index.ts", src / "asconfig.json"
    return _cached(key, name, lambda out: _asc(entry, out, conf))


def rust_sdk_example(name: str) -> Path:
    """plugin_sdk/rust/examples/<name>.rs as a module (cached)."""
    key = _digest(RUST_SDK, extra=RUSTC)
    manifest = RUST_SDK / "Cargo.toml"
    return _cached(key, f"rust-{name}", lambda out: _cargo(manifest, name, out, example=name))


def as_sdk_example(name: str) -> Path:
    """plugin_sdk/assemblyscript/examples/<name>.ts as a module (cached)."""
    key = _digest(AS_SDK, extra="as")
    return _cached(key, f"as-{name}", lambda out: _asc(AS_SDK / "examples" / f"{name}.ts", out))


def run(
    module: Path,
    conf: str | dict | None = None,
    *,
    method: str = "GET",
    path: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    status: int = 200,
    resp_headers: list[tuple[str, str]] | None = None,
    resp_body: bytes = b"",
    max_body_bytes: int = 1 << 20,
    name: str | None = None,
    chunk_size: int = 0,
    cpu_ms: float = 5000.0,
    vm_config: bytes = b"",
    upstreams: dict | None = None,
) -> dict:
    """One request through ``module`` on the production WASM host (edge.wasm), via the
    same code as ``edge plugin test``; returns its report. The CPU budget is generous
    so a loaded test machine never turns a correct plugin into an interrupt; budgets
    themselves are the host's tests."""
    import json

    from edge.plugin_toolkit.messages import RequestSpec, ResponseSpec
    from edge.plugin_toolkit.production import run_production

    raw = json.dumps(conf) if isinstance(conf, dict) else (conf or "")
    return run_production(
        module.read_bytes(),
        conf=raw.encode(),
        vm_config=vm_config,
        request=RequestSpec(method=method, path=path, headers=list(headers or []), body=body),
        upstream=ResponseSpec(status=status, headers=list(resp_headers or []), body=resp_body),
        plugin_name=name or module.stem.rsplit("-", 1)[0],
        root_id="",
        max_body_bytes=max_body_bytes,
        memory_mb=64,
        chunk_size=chunk_size,
        cpu_ms=cpu_ms,
        upstreams=upstreams,
    )


def header(message: dict | None, name: str) -> str | None:
    """A header of a report's ``upstream`` or ``client`` part (case-insensitive)."""
    for k, v in (message or {}).get("headers", []):
        if k.lower() == name.lower():
            return v
    return None
