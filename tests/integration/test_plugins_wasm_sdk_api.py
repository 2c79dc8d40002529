"""The SDKs' test plugins, one per API area, in both languages, on the production host.

plugin_sdk/rust/examples/api_*.rs and plugin_sdk/assemblyscript/examples/api_*.ts do
the same things with the same names; each reports what the SDK returned in ``x-*``
headers, so a regression in an SDK (or in the host under it) fails here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from edge.plugins.base import CompileEnv
from edge.wasm.plugin import make_factory, run_access
from tests.support.upstream import Upstream
from tests.support.wasm import make_request, make_response, make_runtime
from tests.support.wasm_build import as_sdk_example, header, run, rust_sdk_example

LANGS: dict[str, Callable[[str], Path]] = {"rust": rust_sdk_example, "as": as_sdk_example}


@pytest.fixture(params=sorted(LANGS))
def example(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    return LANGS[request.param]


def test_headers(example: Callable[[str], Path]) -> None:
    r = run(
        example("api_headers"),
        "",
        method="POST",
        path="/p?q=1",
        headers=[
            ("Host", "api.test"),
            ("X-Remove-Me", "x"),
            ("X-Rewrite-Path", "/new?z=2"),
            ("X-Set-Status", "201"),
        ],
        resp_headers=[("X-Drop", "1"), ("Content-Type", "text/plain")],
        resp_body=b"ok",
    )
    up = r["upstream"]
    assert header(up, "x-seen") == "POST /p?q=1 api.test http"
    n_seen, n_given = header(up, "x-count").split("/")
    assert int(n_seen) == int(n_given) >= 7  # the four pseudo-headers included
    assert header(up, "x-eos") == "1"
    assert [v for k, v in up["headers"] if k.lower() == "x-added"] == ["one", "two"]
    assert header(up, "x-remove-me") is None and header(up, "x-missing-is-none") == "1"
    assert up["path"] == "/new?z=2"
    cl = r["client"]
    assert cl["status"] == 201
    assert header(cl, "x-status-seen") == "200" and header(cl, "x-resp") == "1"
    assert header(cl, "x-drop") is None
    assert header(cl, "x-resp-names").split(",")[0] == ":status"


def test_bodies(example: Callable[[str], Path]) -> None:
    r = run(
        example("api_body"),
        "",
        method="POST",
        body=b"hello",
        resp_headers=[("Content-Length", "11")],
        resp_body=b"hello world",
        chunk_size=4,
    )
    assert r["upstream"]["body"] == "[hello]"
    assert header(r["upstream"], "x-first-byte") == "h"
    assert r["client"]["body"] == "HELLO WORLD"
    assert header(r["client"], "content-length") is None


def test_configuration_properties_and_logging(example: Callable[[str], Path]) -> None:
    conf = {"greeting": "hi", "n": 7, "items": [1, {"a": None}, "x"], "s": 'q"\\\\ /'}
    r = run(example("api_config"), conf, path="/where?x=1", vm_config=b"vm-conf-1", name="sdk-conf")
    up = r["upstream"]
    greeting = header(up, "x-greeting")
    assert greeting.startswith("hi n=7 items=3 json=")
    assert json.loads(greeting.split("json=", 1)[1]) == conf
    assert header(up, "x-vm-config") == "vm-conf-1"
    assert header(up, "x-plugin-name") == "sdk-conf"
    assert header(up, "x-req-path") == "/where?x=1"
    assert header(up, "x-req-method") == "GET"
    assert header(up, "x-tenant") == "plugin-test"
    assert header(up, "x-missing-property") == "none"
    assert header(up, "x-log-level")
    assert ["warn", "warn line"] in r["logs"] and ["info", "info line"] in r["logs"]
    refused = run(example("api_config"), {"fail": True})
    assert not refused["configured"] and "refusing: fail is true" in refused["config_error"]
    broken = run(example("api_config"), "{nope")
    assert not broken["configured"] and "invalid JSON" in broken["config_error"]


def test_local_responses(example: Callable[[str], Path]) -> None:
    r = run(example("api_local_response"), "", path="/deny/me")
    assert r["upstream"] is None
    assert r["client"]["status"] == 418 and r["client"]["body"] == "short and stout"
    assert header(r["client"], "x-why") == "teapot"
    r = run(example("api_local_response"), "", path="/late", resp_body=b"original")
    assert r["upstream"] is not None
    assert r["client"]["status"] == 503 and r["client"]["body"] == "replaced"
    assert run(example("api_local_response"), "", path="/fine")["client"]["status"] == 200


def test_a_crash_is_logged_then_trapped(example: Callable[[str], Path]) -> None:
    r = run(example("api_local_response"), "", path="/crash")
    assert r["trap"].startswith("proxy_on_request_headers: unreachable")
    assert r["backtrace"] and r["upstream"] is None
    assert r["client"]["status"] == 503  # fail_closed
    critical = [m for lvl, m in r["logs"] if lvl == "critical"]
    # Rust: the panic hook's message; AS: abortWithLog's message with file:line:column
    assert critical and (
        "index out of bounds" in critical[0] or "Index out of range" in critical[0]
    )
    assert ":" in critical[0].rsplit(" ", 1)[-1]


@pytest.fixture
def auth() -> Iterator[Upstream]:
    with Upstream("auth") as up:
        yield up


def test_http_call(example: Callable[[str], Path], auth: Upstream) -> None:
    ups = {"auth": {"nodes": {auth.addr: 1}}}
    r = run(example("api_http_call"), "auth", upstreams=ups)
    up = r["upstream"]
    assert header(up, "x-call-status") == "200"
    assert int(header(up, "x-call-body-len")) > 10
    sent = auth.requests[-1]
    assert sent["path"] == "/check"
    assert ("x-from", "sdk") in [(k.strip().lower(), v.strip()) for k, v in sent["headers"]]
    # an upstream the plugin may not call: the SDK surfaces the status as an error
    r = run(example("api_http_call"), "elsewhere", upstreams=ups)
    assert header(r["upstream"], "x-call-error")


def test_metrics_shared_data_and_queues(example: Callable[[str], Path]) -> None:
    name = f"sdk-state-{time.monotonic_ns()}"
    r = run(example("api_state"), "", path="/abcd", name=name)
    up = r["upstream"]
    assert header(up, "x-requests") == "1"
    assert header(up, "x-cas") in ("None/Some(CasMismatch)", "Ok/CasMismatch")  # Rust / AS
    assert header(up, "x-queue") == "job-1/true"
    assert r["metrics"]["requests"] == 1 and r["metrics"]["last_size"] == 5


async def test_ticks_on_the_production_runtime(example: Callable[[str], Path]) -> None:
    """The worker's tick task (``PluginRuntime.run_ticks``) calls on_tick at the period
    the plugin set; each tick bumps a shared counter that requests report in x-ticks."""
    # shared data is scoped by tenant: a tenant of its own starts the counter at 0
    tenant = f"sdk-ticks-{time.monotonic_ns()}"
    rt = make_runtime(
        example("api_state").read_bytes(), plugin="api_state", tenant=tenant, cpu_ms=5000.0
    )
    plugin = make_factory(rt, "api_state", 0, "fail_closed", 1 << 20)(
        "api_state", {"conf": ""}, CompileEnv()
    )
    assert [r.tick_ms for r in rt.roots.values()] == [50]  # set by on_configure

    async def ticks_seen() -> int:
        req = make_request()
        assert await run_access(plugin, req) is None
        plugin.log(req, make_response())
        return int(req.headers.get("x-ticks") or 0)

    assert await ticks_seen() == 0
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rt.run_ticks)
            while (seen := await ticks_seen()) < 3:
                await trio.sleep(0.01)  # polling under the deadline above
            nursery.cancel_scope.cancel()
    assert rt.failures == 0
    # the tick task is gone (as when a worker stops): the counter stays put
    assert await ticks_seen() == seen
