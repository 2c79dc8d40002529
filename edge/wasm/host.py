"""The WASM host's entry point for the snapshot compiler.

``plugin_entries(config, ...)`` turns a bundle's ``wasm_plugins`` into registry
factories (``edge.plugins.registry.Entry``) to pass to ``compile_snapshot`` as
``extra_plugins``. Per plugin it reads the module from the bundle, checks the pinned
sha256, loads the compiled artifact (disk cache) and builds or reuses its
``PluginRuntime``: runtimes live in ``shared["wasm_runtimes"]`` (per worker, surviving
snapshot swaps) keyed by everything that defines the VM, so a new bundle with the
same plugin keeps the same VM and its state.

``run_ticks(shared)`` is the per-worker task serving proxy_on_tick, queue
notifications and root-context http_calls for every runtime; the worker starts it in
its nursery.
"""

from __future__ import annotations

import json
import os
from typing import Any

import trio

from edge.errors import ConfigError
from edge.wasm.callout import compiled
from edge.wasm.engine import ModuleError, default_cache_dir, load_module
from edge.wasm.plugin import make_factory
from edge.wasm.runtime import PluginRuntime
from edge.wasm.vm import VmSpec

SHARED_KEY = "wasm_runtimes"
DEFAULT_MEMORY_MB = 64
DEFAULT_CPU_MS = 10.0
DEFAULT_MAX_BODY = 1 << 20


def _vm_config_bytes(v: Any) -> bytes:
    if v is None:
        return b""
    if isinstance(v, str):
        return v.encode()
    return json.dumps(v, separators=(",", ":"), sort_keys=True).encode()


def plugin_entries(
    config: Any,
    *,
    base_dir: str | os.PathLike[str] | None,
    node_id: str = "",
    shared: dict[str, Any] | None = None,
    upstreams: dict[str, Any] | None = None,
    cache_dir: str | None = None,
    transport: Any = None,
) -> dict[str, Any]:
    """Factories for every ``wasm_plugins`` entry; raises ``ConfigError`` naming
    ``wasm_plugins[i].<field>`` for a missing file, a sha256 mismatch, a module that
    does not compile or is not proxy-wasm 0.2."""
    shared = shared if shared is not None else {}
    runtimes: dict[tuple[Any, ...], PluginRuntime] = shared.setdefault(SHARED_KEY, {})
    tenants = {str(t.id): t for t in getattr(config, "tenants", []) or []}
    if upstreams is None:
        upstreams = {str(u.id): u for u in getattr(config, "upstreams", []) or [] if u.id}
    problems: list[tuple[str, str]] = []
    entries: dict[str, Any] = {}
    if cache_dir is None:
        # EDGE_WASM_CACHE lets processes share artifacts (tests, several nodes on one box)
        cache_dir = os.environ.get("EDGE_WASM_CACHE")
    if cache_dir is None and shared.get("state_dir"):
        cache_dir = os.path.join(str(shared["state_dir"]), "wasm-cache")
    cache_dir = cache_dir or default_cache_dir()
    for i, w in enumerate(getattr(config, "wasm_plugins", []) or []):
        p = f"wasm_plugins[{i}]"
        path = os.path.join(str(base_dir or "."), w.file)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            problems.append((f"{p}.file", f"cannot read {w.file}: {e.strerror or e}"))
            continue
        try:
            module, digest = load_module(data, w.sha256, cache_dir)
        except ModuleError as e:
            problems.append((f"{p}.{e.field}", f"{w.name}: {e.message}"))
            continue
        exports = {e.name for e in module.exports}
        if not exports & {"proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"}:
            problems.append(
                (f"{p}.file", f"{w.name}: module exports no proxy_abi_version_0_2_1/_0_2_0")
            )
            continue
        tenant = tenants.get(str(w.tenant)) if w.tenant is not None else None
        tl = getattr(tenant, "limits", None)
        wl = w.limits

        def pick(field: str, default: Any, wl: Any = wl, tl: Any = tl) -> Any:
            v = getattr(wl, field, None) if wl is not None else None
            if v is None and tl is not None:
                v = getattr(tl, field, None)
            return default if v is None else v

        memory_mb = int(pick("memory_mb", DEFAULT_MEMORY_MB))
        cpu_ms = float(pick("cpu_ms_per_call", DEFAULT_CPU_MS))
        max_body = int(pick("max_body_bytes", DEFAULT_MAX_BODY))
        allowed = frozenset(w.allowed_capabilities) if w.allowed_capabilities is not None else None
        spec = VmSpec(
            plugin=w.name,
            tenant=str(w.tenant or ""),
            vm_config=_vm_config_bytes(w.vm_config),
            memory_bytes=memory_mb << 20,
            cpu_ms=cpu_ms,
            allowed=allowed,
            http_call_upstreams=frozenset(str(u) for u in w.http_call_upstreams),
            node_id=node_id,
            vm_id=w.name,
        )
        key = (
            w.name,
            digest,
            spec.tenant,
            spec.vm_config,
            spec.memory_bytes,
            cpu_ms,
            allowed,
            spec.http_call_upstreams,
            node_id,
        )
        rt = runtimes.get(key)
        if rt is None:
            rt = PluginRuntime(spec, module, upstreams={}, transport=transport)
            runtimes[key] = rt
        rt.shared = shared
        # upstream definitions may change between bundles without changing the VM;
        # compiled here so a call never compiles (a worker uses its snapshot's instead)
        rt.upstreams = {
            u: compiled(upstreams[u], u) for u in spec.http_call_upstreams if u in upstreams
        }
        entries[w.name] = make_factory(rt, w.name, w.priority, w.failure_policy, max_body)
    if problems:
        raise ConfigError(problems)
    return entries


async def run_ticks(shared: dict[str, Any]) -> None:
    """Serve ticks/queues/root http_calls of every runtime of this worker; runs until
    cancelled. Runtimes added later (a new bundle) are picked up within a second."""
    running: dict[int, trio.CancelScope] = {}
    async with trio.open_nursery() as nursery:
        while True:
            for rt in list(shared.get(SHARED_KEY, {}).values()):
                if id(rt) not in running:
                    running[id(rt)] = await nursery.start(_serve, rt)
            await trio.sleep(1.0)


async def _serve(rt: PluginRuntime, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    with trio.CancelScope() as cs:
        task_status.started(cs)
        await rt.run_ticks()
