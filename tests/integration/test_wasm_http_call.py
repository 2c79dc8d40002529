"""proxy_http_call through the gateway's upstream client (edge.upstream.client.forward)
against real upstreams on 127.0.0.1: success, failure, timeout, balancing; plus
tick, shared queue notifications and metrics from the same module (callout.wat)."""

from __future__ import annotations

import hashlib
import http.client
import inspect
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from edge import metrics
from edge.plugins.base import CompileEnv
from edge.wasm.abi import Status
from edge.wasm.callout import WORKER_STATE, compiled
from edge.wasm.plugin import WasmPlugin, make_factory, run_access
from edge.wasm.shared import SHARED_QUEUES
from edge.worker_state import WorkerState
from tests.support.procs import EdgeProcess, free_port
from tests.support.upstream import Upstream
from tests.support.wasm import make_request, make_response, make_runtime, wat


def callout_plugin(upstream: dict[str, Any], tenant: str = "calls") -> WasmPlugin:
    rt = make_runtime(
        wat("callout"),
        plugin="acme/callout",
        tenant=tenant,
        http_call_upstreams=frozenset({"auth"}),
    )
    # compiled once, as the host does at config time: its balancer state persists
    rt.upstreams = {"auth": compiled(upstream, "auth")}
    p = make_factory(rt, "acme/callout", 0, "fail_closed", 1 << 20)(
        "acme/callout", {"conf": "auth"}, CompileEnv()
    )
    assert isinstance(p, WasmPlugin)
    return p


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream("auth") as up:
        yield up


async def test_http_call_success_pauses_until_response(upstream: Upstream) -> None:
    p = callout_plugin({"nodes": {upstream.addr: 1}})
    req = make_request("GET", "/orig", [("Host", "h")])
    assert await run_access(p, req) is None
    assert req.headers.get("x-call-status") == "200"
    echoed = json.loads(req.headers.get("x-call-body") or "{}")
    assert echoed["path"] == "/auth" and echoed["method"] == "GET"
    raw = echoed["headers"]
    items = raw.items() if isinstance(raw, dict) else raw
    headers = {k.lower(): v.strip() for k, v in items}
    assert headers["x-from"] == "wasm" and headers["host"] == "auth"
    p.log(req, make_response())


async def test_access_returns_a_coroutine_while_a_call_is_pending(upstream: Upstream) -> None:
    """Sync-first ``access``: the guest's call must run before the answer is known."""
    p = callout_plugin({"nodes": {upstream.addr: 1}})
    req = make_request("GET", "/orig", [("Host", "h")])
    pending = p.access(req)
    assert inspect.isawaitable(pending)
    assert await pending is None
    assert req.headers.get("x-call-status") == "200"
    p.log(req, make_response())


async def test_a_pending_call_is_left_to_its_own_request(upstream: Upstream) -> None:
    """Between ``access`` returning and being awaited, the tick loop (or another
    request) takes calls: not this request's, or it would go on without the answer."""
    p = callout_plugin({"nodes": {upstream.addr: 1}})
    req = make_request("GET", "/orig", [("Host", "h")])
    pending = p.access(req)
    assert inspect.isawaitable(pending)
    assert p.rt.vm is not None and p.rt.take_calls(p.rt.vm) == []
    assert await pending is None
    assert req.headers.get("x-call-status") == "200"
    p.log(req, make_response())


async def test_http_call_failure_answers_local_response() -> None:
    port = free_port()  # nothing listens there: connection refused
    p = callout_plugin({"nodes": {f"127.0.0.1:{port}": 1}})
    r = await run_access(p, make_request())
    assert r is not None and r.status == 503 and r.body == b"call failed"


async def test_http_call_timeout_answers_local_response() -> None:
    # a listener that never accepts: the TCP handshake completes, no answer ever comes
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        p = callout_plugin({"nodes": {f"127.0.0.1:{s.getsockname()[1]}": 1}})
        with trio.fail_after(10):
            r = await run_access(p, make_request())
    assert r is not None and r.status == 503 and r.body == b"call failed"


async def test_http_call_is_balanced_across_nodes() -> None:
    with Upstream("a") as a, Upstream("b") as b:
        p = callout_plugin({"nodes": {a.addr: 1, b.addr: 1}, "type": "roundrobin"})
        seen = []
        for _ in range(4):
            req = make_request()
            assert await run_access(p, req) is None
            assert req.headers.get("x-call-status") == "200"
            seen.append(json.loads(req.headers.get("x-call-body") or "{}")["upstream"])
        assert sorted(seen) == ["a", "a", "b", "b"]
        assert len(a.requests) == 2 and len(b.requests) == 2


async def test_http_call_retries_on_another_node(upstream: Upstream) -> None:
    # the first node refuses; the upstream client's retry reaches the second one
    dead = f"127.0.0.1:{free_port()}"
    p = callout_plugin({"nodes": {dead: 100, upstream.addr: 1}, "retries": 1})
    req = make_request()
    assert await run_access(p, req) is None
    assert req.headers.get("x-call-status") == "200"


async def test_http_call_uses_the_workers_snapshot_and_pools(upstream: Upstream) -> None:
    # what the host compiled points nowhere; the serving snapshot's upstream is used
    p = callout_plugin({"nodes": {f"127.0.0.1:{free_port()}": 1}}, tenant="worker")
    live = compiled({"nodes": {upstream.addr: 1}}, "auth")
    state = WorkerState(SimpleNamespace(upstreams={"auth": live}, routes={}))
    p.rt.shared = {WORKER_STATE: state}
    try:
        for _ in range(2):
            req = make_request()
            assert await run_access(p, req) is None
            assert req.headers.get("x-call-status") == "200"
        # both calls went through the worker's pools: one keep-alive node pool
        assert len(state.pools.pools) == 1
    finally:
        state.pools.close_all()


async def test_http_call_to_unlisted_upstream_is_refused(upstream: Upstream) -> None:
    rt = make_runtime(
        wat("callout"),
        plugin="acme/callout2",
        tenant="calls2",
        http_call_upstreams=frozenset({"other"}),
    )
    p = make_factory(rt, "acme/callout2", 0, "fail_closed", 1 << 20)(
        "acme/callout2", {"conf": "auth"}, CompileEnv()
    )
    req = make_request()
    assert await run_access(p, req) is None
    assert req.headers.get("x-call-error") == "yes"  # the guest saw BAD_ARGUMENT


async def test_tick_metric_and_queue(upstream: Upstream, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.wasm")
    p = callout_plugin({"nodes": {upstream.addr: 1}}, tenant="ticks")
    rt = p.rt
    qid = SHARED_QUEUES.resolve("ticks", rt.spec.vm_id, b"jobs")
    assert qid is not None

    def ticks() -> float:
        text = metrics.render().decode()
        for line in text.splitlines():
            if line.startswith('edge_wasm_acme_callout_ticks_total{tenant="ticks"}'):
                return float(line.split()[-1])
        return 0.0

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rt.run_ticks)
            while ticks() < 3:
                await trio.sleep(0.005)
            # another VM of the tenant (here: the host) enqueues; the owner is notified
            assert SHARED_QUEUES.enqueue("ticks", qid, b"job-42") == Status.OK
            rt._wake_ticks()
            while "job-42" not in caplog.text:
                await trio.sleep(0.005)
            nursery.cancel_scope.cancel()


def test_http_call_through_a_real_gateway_is_balanced(tmp_path: Path) -> None:
    """`edge run`: the worker hands the call to its own pools and the snapshot's
    upstream, whose round robin spreads the calls over both nodes."""
    data = wat("callout")
    with Upstream("app") as app, Upstream("a") as a, Upstream("b") as b:
        cfg: dict[str, Any] = {
            "tenants": [{"id": "calls"}],
            "upstreams": [
                {"id": "app", "nodes": {app.addr: 1}},
                {"id": "auth", "type": "roundrobin", "nodes": {a.addr: 1, b.addr: 1}},
            ],
            "routes": [
                {
                    "id": "r",
                    "uri": "/*",
                    "upstream_id": "app",
                    "plugins": {"acme/callout": {"conf": "auth"}},
                }
            ],
        }
        p = EdgeProcess(cfg)
        (p.tmp / "callout.wasm").write_bytes(data)
        cfg["wasm_plugins"] = [
            {
                "name": "acme/callout",
                "file": "callout.wasm",
                "sha256": hashlib.sha256(data).hexdigest(),
                "tenant": "calls",
                "failure_policy": "fail_closed",
                "http_call_upstreams": ["auth"],
            }
        ]
        p.write_config(cfg)
        with p:
            seen = []
            for _ in range(4):
                conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
                try:
                    conn.request("GET", "/x")
                    r = conn.getresponse()
                    assert r.status == 200
                    doc = json.loads(r.read())
                finally:
                    conn.close()
                hdrs = {k.lower(): v.strip() for k, v in doc["headers"]}
                assert hdrs["x-call-status"] == "200"
                seen.append(json.loads(hdrs["x-call-body"])["upstream"])
    assert sorted(seen) == ["a", "a", "b", "b"]
