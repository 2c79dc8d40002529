"""``edge plugin test``: one request through a module on the production WASM host.

The module runs exactly as the gateway runs it: the same engine (``edge.wasm``),
sandbox limits, hostcalls and phase code (``edge.wasm.plugin.WasmPlugin``: access ->
header_filter -> body_filter -> log). Only the network is replaced: the upstream is
the canned response, and http_calls reach only the upstreams the caller names.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import trio

from edge import metrics
from edge.context import ConnInfo, Request, Response
from edge.errors import ClientError
from edge.http.headers import Headers
from edge.plugin_toolkit.messages import RequestSpec, ResponseSpec
from edge.plugins.base import CompileEnv, PluginConfigError
from edge.wasm.engine import ModuleError, load_module
from edge.wasm.fastcall import GuestTrap
from edge.wasm.plugin import WasmPlugin, make_factory
from edge.wasm.runtime import PluginRuntime
from edge.wasm.stats import metric_name
from edge.wasm.vm import VmSpec

TENANT = "plugin-test"
MAX_FRAMES = 32
_LEVELS = {5: "trace", 10: "debug", 20: "info", 30: "warn", 40: "error", 50: "critical"}


class _Collect(logging.Handler):
    def __init__(self, prefix: str) -> None:
        super().__init__(level=1)
        self.prefix = prefix
        self.lines: list[list[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith(self.prefix):
            self.lines.append([_LEVELS.get(record.levelno, "info"), msg[len(self.prefix) :]])


def _watched(fn: Any, name: str, timings: dict[str, float], traps: list[list[str]]) -> Any:
    """``fn`` timed, and its trap recorded whole: the gateway logs only the reason,
    an author debugging it wants the wasm backtrace too."""

    def call(*args: int) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        except GuestTrap as e:
            traps.append(_trap_lines(name, e))
            raise
        finally:
            timings[name] = timings.get(name, 0.0) + (time.perf_counter() - t0) * 1e6

    return call


def _trap_lines(callback: str, e: GuestTrap) -> list[str]:
    """``callback: kind: reason``, then the frames of wasmtime's backtrace (function
    names when the module keeps its name section)."""
    lines = [ln.strip() for ln in e.detail.replace("\0", "").splitlines()]
    lines = [ln for ln in lines if ln]
    reason = e.message.replace("\0", "").strip() or (lines[-1] if lines else "")
    frames = [ln for ln in lines if ln[:1].isdigit() and ":" in ln]
    if len(frames) > MAX_FRAMES:  # a stack overflow's trace runs to thousands
        frames[MAX_FRAMES:] = [f"... {len(frames) - MAX_FRAMES} more frames"]
    return [f"{callback}: {e.kind}" + (f": {reason}" if reason else ""), *frames]


def _metrics(plugin: str) -> dict[str, int | float]:
    prefix = metric_name(plugin, "")
    out: dict[str, int | float] = {}
    for line in metrics.render().decode().splitlines():
        if line.startswith(prefix) and f'tenant="{TENANT}"' in line:
            name = line.split("{", 1)[0][len(prefix) :]
            if name.endswith("_created"):
                continue
            value = float(line.rsplit(" ", 1)[1])
            out[name.removesuffix("_total")] = int(value) if value.is_integer() else value
    return out


def _request(spec: RequestSpec) -> Request:
    hs = list(spec.headers)
    if not any(k.lower() == "host" for k, _ in hs):
        hs.insert(0, ("Host", "localhost"))
    req = Request(
        spec.method,
        spec.path,
        "1.1",
        Headers(hs),
        ConnInfo("127.0.0.1", 40000, "127.0.0.1", 9080),
        time.monotonic(),
        time.time(),
    )
    req.request_id = "plugin-test-1"
    body = spec.body
    if body:
        req.content_length = len(body)
        req.headers.set("Content-Length", str(len(body)))

        async def read_body(limit: int) -> bytes:
            if len(body) > limit:
                raise ClientError("request body too large", 413)
            return body

        req.read_body = read_body
    return req


def _resp_dict(resp: Response, body: bytes, local: bool) -> dict[str, Any]:
    return {
        "status": resp.status,
        "headers": [[k, v] for k, v in resp.headers.items()],
        "body": body.decode("utf-8", "backslashreplace"),
        "local_response": local,
    }


def run_production(
    wasm: bytes,
    *,
    conf: bytes,
    vm_config: bytes,
    request: RequestSpec,
    upstream: ResponseSpec,
    plugin_name: str,
    root_id: str,
    max_body_bytes: int,
    memory_mb: int,
    cpu_ms: float = 10.0,
    chunk_size: int = 0,
    upstreams: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``chunk_size``: hand the upstream body to the plugin in pieces of this size (the
    gateway streams it as it arrives); 0 gives it whole. ``upstreams``: what the
    plugin's http_calls may reach, by upstream id (``{"nodes": {"host:port": 1}}``)."""
    report: dict[str, Any] = {
        "host": "edge.wasm (production)",
        "configured": False,
        "trap": None,
        "upstream": None,
        "client": None,
        "logs": [],
        "metrics": {},
        "timings_us": {},
    }
    logger = logging.getLogger("edge.wasm")
    collect = _Collect(f"wasm[{plugin_name}] ")
    old_level = logger.level
    logger.addHandler(collect)
    logger.setLevel(1)
    try:
        try:
            module, _digest = load_module(wasm, None)
        except ModuleError as e:
            report["config_error"] = e.message
            return report
        spec = VmSpec(
            plugin=plugin_name,
            tenant=TENANT,
            vm_config=vm_config,
            memory_bytes=memory_mb << 20,
            cpu_ms=cpu_ms,
            vm_id=plugin_name,
            http_call_upstreams=frozenset(upstreams or ()),
        )
        rt = PluginRuntime(spec, module, upstreams=dict(upstreams or {}))
        factory = make_factory(rt, plugin_name, 0, "fail_closed", max_body_bytes)
        raw_conf = conf.decode("utf-8", "surrogateescape")
        try:
            plugin = factory(plugin_name, {"conf": raw_conf, "root_id": root_id}, CompileEnv())
        except PluginConfigError as e:
            report["config_error"] = e.message
            report["logs"] = collect.lines
            return report
        assert isinstance(plugin, WasmPlugin)
        report["configured"] = True
        timings: dict[str, float] = {}
        traps: list[list[str]] = []
        if rt.vm is not None:
            # wrapped callbacks also make the VM call each one on its own (no batching)
            for name, fn in list(rt.vm.cb.items()):
                if fn is not None:
                    rt.vm.cb[name] = _watched(fn, name, timings, traps)
        trio.run(_one_request, plugin, request, upstream, report, chunk_size)
        if traps:
            report["trap"] = traps[0][0]
            report["backtrace"] = traps[0][1:]
        elif rt.failures:
            report["trap"] = rt.last_error or "the plugin failed"
        report["timings_us"] = {k: round(v, 1) for k, v in timings.items()}
        report["metrics"] = _metrics(plugin_name)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(old_level)
    report["logs"] = collect.lines
    return report


async def _one_request(
    plugin: WasmPlugin,
    spec: RequestSpec,
    upstream: ResponseSpec,
    report: dict[str, Any],
    chunk_size: int,
) -> None:
    req = _request(spec)
    try:
        local = plugin.access(req)
        if local is not None and not isinstance(local, Response):
            local = await local  # sync-first: an awaitable only when the guest must wait
    except ClientError as e:
        local = Response(e.status, Headers([("Content-Type", "text/plain")]), str(e).encode())
    if local is not None:
        report["client"] = _resp_dict(local, local.body or b"", True)
        plugin.log(req, local)
        return
    body = req.body if req.body is not None else spec.body
    report["upstream"] = {
        "method": req.method,
        "path": req.uri,
        "headers": [[k, v] for k, v in req.headers.items()],
        "body": body.decode("utf-8", "backslashreplace"),
    }
    resp = Response(upstream.status, Headers(list(upstream.headers)))
    replaced = plugin.header_filter(req, resp)
    if replaced is not None:
        report["client"] = _resp_dict(replaced, replaced.body or b"", True)
        plugin.log(req, replaced)
        return
    step = chunk_size or len(upstream.body) or 1
    chunks = [upstream.body[i : i + step] for i in range(0, len(upstream.body), step)] or [b""]
    out = b""
    try:
        for i, chunk in enumerate(chunks):
            out += plugin.body_filter(req, resp, chunk, i == len(chunks) - 1)
    except Exception as e:  # the host aborts a started response when the plugin fails
        report["client"] = _resp_dict(resp, b"", False)
        report["client"]["aborted"] = str(e)
        plugin.log(req, resp)
        return
    report["client"] = _resp_dict(resp, out, False)
    plugin.log(req, resp)
