"""The process's wasmtime Engine, its epoch ticker, and the compiled-module cache.

One Engine per worker process: every VM's Store belongs to it, and the epoch ticker
(``edge.wasm.epoch``: a POSIX timer calling wasmtime directly, or a thread) increments
its epoch every ``TICK_SECONDS``, so a guest over its CPU budget traps at the next tick.

Compiling a module costs 100s of ms (a Go module: seconds); deserializing a compiled
artifact is 150-500x faster, so artifacts are cached on disk keyed by the module's
sha256, the wasmtime version and the engine settings that change generated code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time

import wasmtime

from edge.wasm import epoch
from edge.wasm.fastcall import TICK_NS, WASMTIME_VERSION

log = logging.getLogger("edge.wasm")

# 2 ms: a 10 ms budget is 5-6 ticks, precise enough
TICK_SECONDS = TICK_NS / 1e9
# a real Go module is ~3.5 MB, a C++ one ~40 KB; anything far larger is refused
# before wasmtime spends seconds (and memory) compiling it
MAX_MODULE_BYTES = 32 << 20
# bump when the Config below changes, so stale artifacts are not deserialized
_CONFIG_TAG = "epoch1"


_lock = threading.Lock()
_engine: wasmtime.Engine | None = None
_ticker = ""  # how this process's engine is ticked (``edge.wasm.epoch.start``)
_engine_pid = 0


def engine() -> wasmtime.Engine:
    """The Engine of this process (a forked worker gets its own, and its own ticker)."""
    global _engine, _ticker, _engine_pid
    pid = os.getpid()
    if _engine is not None and _engine_pid == pid:
        return _engine
    with _lock:
        if _engine is None or _engine_pid != pid:
            cfg = wasmtime.Config()
            cfg.epoch_interruption = True
            _engine = wasmtime.Engine(cfg)
            _engine_pid = pid
            _ticker = epoch.start(_engine, TICK_NS)
    return _engine


def ticker() -> str:
    """How the epoch of this process's engine is ticked: "timer", "thread" or ""."""
    return _ticker if _engine_pid == os.getpid() else ""


def deadline_ticks(cpu_ms: float) -> int:
    """Ticks for a ``cpu_ms`` budget; +1 because the first tick may come at once."""
    return max(1, int(cpu_ms / 1000.0 / TICK_SECONDS + 0.999)) + 1


def default_cache_dir() -> str:
    base = os.environ.get("EDGE_STATE_DIR") or os.path.join(tempfile.gettempdir(), "edge-state")
    return os.path.join(base, "wasm-cache")


class ModuleError(Exception):
    """A module cannot be used: ``field`` names the config field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def load_module(
    wasm: bytes, sha256_pin: str | None, cache_dir: str | None = None
) -> tuple[wasmtime.Module, str]:
    """Check the pin, then deserialize the cached artifact or compile and cache it.

    Returns ``(module, sha256)``. Raises ``ModuleError`` naming ``sha256`` or ``file``.
    """
    if len(wasm) > MAX_MODULE_BYTES:
        raise ModuleError(
            "file",
            f"module is {len(wasm) / (1 << 20):.1f} MiB, above the "
            f"{MAX_MODULE_BYTES >> 20} MiB limit",
        )
    digest = hashlib.sha256(wasm).hexdigest()
    if sha256_pin is not None and digest != sha256_pin.lower():
        raise ModuleError("sha256", f"module sha256 is {digest}, configuration pins {sha256_pin}")
    eng = engine()
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, f"{digest}-wasmtime{WASMTIME_VERSION}-{_CONFIG_TAG}.cwasm")
    if os.path.exists(path):
        try:
            return wasmtime.Module.deserialize_file(eng, path), digest
        except wasmtime.WasmtimeError as e:
            log.warning("wasm cache: discarding unreadable artifact %s: %s", path, e)
    t0 = time.perf_counter()
    try:
        module = wasmtime.Module(eng, wasm)
    except wasmtime.WasmtimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid module"
        raise ModuleError("file", f"module does not compile: {first}") from None
    log.info("wasm: compiled %s in %.0f ms", digest[:12], (time.perf_counter() - t0) * 1000)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(module.serialize())
        os.replace(tmp, path)
    except OSError as e:
        # the cache is an optimisation; a read-only state dir must not fail the bundle
        log.warning("wasm cache: cannot write %s: %s", path, e)
    return module, digest
