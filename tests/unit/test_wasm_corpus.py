"""The third-party corpus (Go, C++, Rust, TinyGo SDK builds) through the plugin adapter,
each behaving as /work/shared/wasm-corpus/README.md describes."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio

from edge.plugins.base import CompileEnv, PluginConfigError
from edge.wasm.plugin import WasmPlugin, make_factory, run_access
from tests.support.wasm import corpus, make_request, make_response, make_runtime


def plugin(name: str, conf: Any = None, **raw: Any) -> WasmPlugin:
    rt = make_runtime(corpus(name), plugin=name, tenant="t1")
    p = make_factory(rt, name, 0, "fail_closed", 1 << 20)(name, {"conf": conf, **raw}, CompileEnv())
    assert isinstance(p, WasmPlugin)
    return p


@pytest.fixture
def wasm_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="edge.wasm")
    return caplog


async def roundtrip(
    p: WasmPlugin, req: Any, resp_body: bytes = b"upstream"
) -> tuple[Any, Any, bytes]:
    r = await run_access(p, req)
    if r is not None:
        p.log(req, r)
        return r, None, b""
    resp = make_response()
    p.header_filter(req, resp)
    out = p.body_filter(req, resp, resp_body, True)
    p.log(req, resp)
    return None, resp, out


async def test_go_http_headers(wasm_logs: pytest.LogCaptureFixture) -> None:
    p = plugin("go_http_headers", {"header": "x-conf", "value": "v1"})
    for n in (1, 2, 3):
        req = make_request("GET", "/g", [("Host", "h.test"), ("X-In", "1")])
        r, resp, _ = await roundtrip(p, req)
        assert r is None
        assert req.headers.get("test") == "best"  # what the upstream receives
        assert resp.headers.get("x-proxy-wasm-go-sdk-example") == "http_headers"
        assert resp.headers.get("x-proxy-wasm-counter") == str(n)
        assert resp.headers.get("x-conf") == "v1"
    text = wasm_logs.text
    assert "request header --> :path: /g" in text and "request header --> x-in: 1" in text
    assert " finished" in text


def test_go_http_headers_config_checks() -> None:
    plugin("go_http_headers")  # empty configuration is fine
    with pytest.raises(PluginConfigError) as ei:
        plugin("go_http_headers", "{not json")
    assert "proxy_on_configure returned false" in ei.value.message
    with pytest.raises(PluginConfigError):
        plugin("go_http_headers", {"header": "", "value": "x"})


async def test_go_http_body_echo() -> None:
    p = plugin("go_http_body", "echo")
    r, _, _ = await roundtrip(p, make_request("POST", "/", [("Host", "h")], body=b"ping"))
    assert r is not None and r.status == 200 and r.body == b"ping"


async def test_go_http_body_requires_body() -> None:
    p = plugin("go_http_body")
    r, _, _ = await roundtrip(p, make_request("GET", "/", [("Host", "h")]))
    assert r is not None and r.status == 400 and r.body == b"content must be provided"


@pytest.mark.parametrize(
    ("op", "expect"),
    [
        ("append", b"body[this is appended body]"),
        ("prepend", b"[this is prepended body]body"),
        ("replace", b"[this is replaced body]"),
        (None, b"[this is replaced body]"),
    ],
)
async def test_go_http_body_request_operations(op: str | None, expect: bytes) -> None:
    p = plugin("go_http_body")
    hdrs = [("Host", "h")] + ([("buffer-operation", op)] if op else [])
    req = make_request("POST", "/", hdrs, body=b"body")
    r, _, out = await roundtrip(p, req)
    assert r is None
    assert req.body == expect
    assert req.headers.get("content-length") == str(len(expect))
    assert out == b"upstream"


async def test_go_http_body_response_operation() -> None:
    p = plugin("go_http_body")
    req = make_request(
        "POST",
        "/",
        [("Host", "h"), ("buffer-replace-at", "response"), ("buffer-operation", "append")],
        body=b"body",
    )
    r, _resp, out = await roundtrip(p, req, b"from upstream")
    assert r is None and req.body == b"body"
    assert out == b"from upstream[this is appended body]"


async def test_go_http_body_buffers_paused_response_chunks() -> None:
    p = plugin("go_http_body")
    req = make_request("POST", "/", [("Host", "h"), ("buffer-replace-at", "response")], body=b"b")
    assert await run_access(p, req) is None
    resp = make_response()
    assert p.header_filter(req, resp) is None
    assert p.body_filter(req, resp, b"part1 ", False) == b""  # paused until end of stream
    assert p.body_filter(req, resp, b"part2", True) == b"[this is replaced body]"
    p.log(req, resp)


async def test_cpp_on_request_headers(wasm_logs: pytest.LogCaptureFixture) -> None:
    p = plugin("cpp_on_request_headers")
    req = make_request("GET", "/c", [("Host", "h"), ("X-Cpp", "yes")])
    r, _, _ = await roundtrip(p, req)
    assert r is None
    infos = [x.message for x in wasm_logs.records if x.levelno == logging.INFO]
    warns = [x.message for x in wasm_logs.records if x.levelno == logging.WARNING]
    assert any("x-cpp -> yes" in m for m in infos)
    for word in ("onDone", "onLog", "onDelete"):
        assert any(word in m for m in warns), word


async def test_rust_hello_world_root_only(wasm_logs: pytest.LogCaptureFixture) -> None:
    p = plugin("rust_hello_world")
    assert "Hello, World!" in wasm_logs.text
    rt = p.rt
    # its root context declares no HTTP context: requests pass without one
    for _ in range(3):
        r, _, _ = await roundtrip(p, make_request())
        assert r is None
    assert p.key in rt.root_only
    vm = rt.acquire()
    assert vm is not None and not vm.streams
    root = next(iter(vm.roots.values()))
    assert root.tick_ms == 5000
    root.next_tick = 0.0  # due now: no need to wait 5 s
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rt.run_ticks)
            while "your lucky number is" not in wasm_logs.text:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()


async def test_rust_hello_world_declared_root_only() -> None:
    p = plugin("rust_hello_world", None, root_only=True)
    r, _, _ = await roundtrip(p, make_request())
    assert r is None and p.rt.restarts == 0


async def test_tinygo_add_req_header() -> None:
    p = plugin("tinygo_add_req_header")
    ids = set()
    for _ in range(2):
        req = make_request()
        r, _, _ = await roundtrip(p, req)
        assert r is None
        ids.add(req.headers.get("wasm-context"))
    assert len(ids) == 2 and all(i and i.isdigit() for i in ids)


def test_json_conf_reaches_on_configure() -> None:
    from edge.wasm.plugin import encode_conf

    assert (
        encode_conf({"b": 1, "a": "x"})
        == json.dumps({"a": "x", "b": 1}, separators=(",", ":")).encode()
    )
    assert encode_conf("raw text") == b"raw text"
    assert encode_conf(None) == b""


async def test_new_configuration_on_a_live_runtime_is_validated_apart() -> None:
    """A new bundle compiles in a thread while requests use the live VM: validation must
    not enter the live Store; the root context is created at its first request."""
    rt = make_runtime(corpus("go_http_headers"), plugin="live", tenant="t1")
    factory = make_factory(rt, "live", 0, "fail_closed", 1 << 20)
    first = factory("live", {"conf": {"header": "x-a", "value": "1"}}, CompileEnv())
    r, resp, _ = await roundtrip(first, make_request())  # the runtime is live now
    assert r is None and resp.headers.get("x-a") == "1"
    vm = rt.vm
    assert vm is not None and len(vm.roots) == 1
    with pytest.raises(PluginConfigError):
        factory("live", {"conf": "{bad"}, CompileEnv())
    second = factory("live", {"conf": {"header": "x-b", "value": "2"}}, CompileEnv())
    assert rt.vm is vm and len(vm.roots) == 1  # untouched by validation
    r, resp, _ = await roundtrip(second, make_request())
    assert r is None and resp.headers.get("x-b") == "2" and len(vm.roots) == 2
