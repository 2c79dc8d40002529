"""In-process cost of one WASM plugin per request, through the plugin adapter.

    python -m edge.wasm.bench [module.wasm ...] [-n 20000]

For each module (default: the corpus's tinygo_add_req_header and go_http_headers) it
runs ``n`` requests through every phase the adapter implements (access ->
header_filter -> body_filter -> log: context create, on_request_headers,
on_response_headers, on_response_body, on_done/on_log/on_delete) and prints the
cost per request and the requests per second one core could afford for the plugin
alone. Costs are CPU time of this process (``time.process_time``), so a busy machine
does not inflate them; wall time is printed beside. The loop is bounded by ``n``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

import trio

from edge.context import ConnInfo, Request, Response
from edge.http.headers import Headers
from edge.plugins.base import CompileEnv
from edge.wasm.engine import load_module
from edge.wasm.plugin import WasmPlugin, make_factory
from edge.wasm.runtime import PluginRuntime
from edge.wasm.vm import VmSpec

CORPUS = "/work/shared/wasm-corpus"
DEFAULTS = ("tinygo_add_req_header.wasm", "go_http_headers.wasm")


def _request(conn: ConnInfo) -> Request:
    h = Headers([("Host", "bench.test"), ("User-Agent", "bench/1"), ("Accept", "*/*")])
    return Request("GET", "/bench?x=1", "1.1", h, conn, time.monotonic(), time.time())


async def _run(p: WasmPlugin, n: int) -> tuple[float, float]:
    conn = ConnInfo("127.0.0.1", 40000, "127.0.0.1", 8080)
    c0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(n):
        req = _request(conn)
        # the chain's sync-first call: await only what has to wait
        r = p.access(req)
        if r is not None and not isinstance(r, Response):
            await r
        resp = Response(200, Headers([("Content-Type", "text/plain"), ("Content-Length", "2")]))
        p.header_filter(req, resp)
        p.body_filter(req, resp, b"ok", True)
        p.log(req, resp)
    return time.process_time() - c0, time.perf_counter() - t0


async def _baseline(n: int) -> tuple[float, float]:
    conn = ConnInfo("127.0.0.1", 40000, "127.0.0.1", 8080)
    c0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(n):
        req = _request(conn)
        Response(200, Headers([("Content-Type", "text/plain"), ("Content-Length", "2")]))
        req.plugin_ctx.get("x")
    return time.process_time() - c0, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*")
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--conf", default=None, help="plugin configuration (JSON or text)")
    args = ap.parse_args(argv)
    logging.getLogger("edge.wasm").setLevel(logging.WARNING)
    paths = args.modules or [os.path.join(CORPUS, m) for m in DEFAULTS]
    base_cpu, base_wall = trio.run(_baseline, args.n)
    print(f"baseline (request objects only): {base_cpu / args.n * 1e6:.2f} us/request CPU")
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        module, _ = load_module(data, None)
        name = os.path.basename(path).removesuffix(".wasm")
        rt = PluginRuntime(VmSpec(plugin=name, tenant="bench"), module)
        conf: object = args.conf
        if args.conf:
            try:
                conf = json.loads(args.conf)
            except ValueError:
                pass
        p = make_factory(rt, name, 0, "fail_closed", 1 << 20)(name, {"conf": conf}, CompileEnv())
        assert isinstance(p, WasmPlugin)
        trio.run(_run, p, min(args.n, 1000))  # warm-up
        cpu, wall = trio.run(_run, p, args.n)
        per = (cpu - base_cpu) / args.n
        per_wall = (wall - base_wall) / args.n
        print(
            f"{name}: {per * 1e6:.1f} us/request added (CPU; wall {per_wall * 1e6:.1f}), "
            f"{1 / per:,.0f} plugin-requests/s/core"
        )


if __name__ == "__main__":
    main()
