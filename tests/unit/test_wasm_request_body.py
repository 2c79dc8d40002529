"""proxy_on_request_body through WasmPlugin: streamed chunk by chunk via
request_body_filter, Pause buffering until end of stream (413 past max_body_bytes),
and the whole-body path in ``access`` for bodies the proxy buffers anyway."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pytest

from edge.context import Request, Response
from edge.errors import ClientError, LocalReply
from edge.plugins.base import CompileEnv
from edge.plugins.chain import PluginChain
from edge.wasm.plugin import WasmPlugin, make_factory, run_access, unchained_phases
from tests.support.wasm import make_request, make_runtime, wat

CONTINUE, PAUSE_UNTIL_EOS, REWRITE, DENY = 0, 1, 2, 3


def setup(mode: int, max_body: int = 1 << 20) -> tuple[Any, WasmPlugin]:
    rt = make_runtime(wat("reqbody"), plugin="t/reqbody", tenant="t")
    p = make_factory(rt, "t/reqbody", 0, "fail_closed", max_body)("t/reqbody", {}, CompileEnv())
    assert isinstance(p, WasmPlugin)
    rt.vm.instance.exports(rt.vm.store)["set_mode"](rt.vm.store, mode)
    return rt, p


def guest(rt: Any, name: str) -> int:
    return int(rt.vm.instance.exports(rt.vm.store)[name].value(rt.vm.store))


def chunked_request(p: WasmPlugin, in_route: bool = True) -> Request:
    req = make_request("POST", "/up", [("Host", "example.com"), ("Transfer-Encoding", "chunked")])
    req.chunked = True
    # the proxy runs request_body_filter of the route's chain
    req.route = SimpleNamespace(chain=PluginChain([(p, 0)])) if in_route else None
    return req


async def stream(p: WasmPlugin, req: Request, chunks: list[bytes]) -> list[bytes]:
    """Feed chunks the way edge/proxy.py does: each as it arrives, then b"" at the end."""
    out = [await p.request_body_filter(req, c, False) for c in chunks]
    out.append(await p.request_body_filter(req, b"", True))
    return out


def test_request_body_filter_is_chained_only_with_the_callback() -> None:
    assert "request_body_filter" not in unchained_phases({"proxy_on_request_body"})
    assert "request_body_filter" in unchained_phases({"proxy_on_request_headers"})
    assert "request_body_filter" in unchained_phases({"proxy_on_response_body"})
    assert not unchained_phases({"proxy_on_request_body", "proxy_on_response_body"})
    _rt, p = setup(CONTINUE)
    assert PluginChain([(p, 0)]).request_body_filter


async def test_each_chunk_reaches_the_guest_with_eos_only_on_the_last() -> None:
    rt, p = setup(CONTINUE)
    req = chunked_request(p)
    assert await run_access(p, req) is None
    assert guest(rt, "calls") == 0  # nothing buffered in access for a streamed body
    chunks = [b"ab", b"cde", b"fghi"]
    out = await stream(p, req, chunks)
    assert out == [*chunks, b""]
    assert guest(rt, "calls") == 4
    assert guest(rt, "eos_calls") == 1
    assert guest(rt, "eos_at") == 4
    p.log(req, None)
    assert not rt.vm.streams


async def test_the_guest_rewrites_each_chunk() -> None:
    _rt, p = setup(REWRITE)
    req = chunked_request(p)
    assert await run_access(p, req) is None
    out = await stream(p, req, [b"one", b"two"])
    assert out == [b"#", b"#", b"#"]
    p.log(req, None)


async def test_pause_buffers_until_end_of_stream() -> None:
    rt, p = setup(PAUSE_UNTIL_EOS)
    req = chunked_request(p)
    assert await run_access(p, req) is None
    chunks = [b"alpha-", b"beta-", b"gamma"]
    out = await stream(p, req, chunks)
    body = b"".join(chunks)
    assert out == [b"", b"", b"", body]
    assert guest(rt, "calls") == 4
    assert guest(rt, "eos_at") == 4
    assert guest(rt, "last_len") == len(body)  # called again with the whole buffer
    ptr, n = guest(rt, "seen_ptr"), guest(rt, "seen_len")
    assert (
        bytes(rt.vm.instance.exports(rt.vm.store)["memory"].read(rt.vm.store, ptr, ptr + n)) == body
    )
    p.log(req, None)


async def test_pause_past_max_body_bytes_is_413() -> None:
    _rt, p = setup(PAUSE_UNTIL_EOS, max_body=8)
    req = chunked_request(p)
    assert await run_access(p, req) is None
    assert await p.request_body_filter(req, b"12345", False) == b""
    with pytest.raises(ClientError) as e:
        await p.request_body_filter(req, b"67890", False)
    assert e.value.status == 413
    p.log(req, None)


async def test_buffered_body_goes_whole_in_access_and_once() -> None:
    rt, p = setup(PAUSE_UNTIL_EOS)
    req = make_request("POST", "/up", body=b"hello")
    req.route = SimpleNamespace(chain=PluginChain([(p, 0)]))
    assert await run_access(p, req) is None
    assert (guest(rt, "calls"), guest(rt, "eos_at")) == (1, 1)
    # the proxy then passes the buffered body through the filter: not a second time
    assert await p.request_body_filter(req, b"hello", True) == b"hello"
    assert guest(rt, "calls") == 1
    p.log(req, None)


async def test_a_global_rule_plugin_gets_a_streamed_body_whole_in_access() -> None:
    rt, p = setup(PAUSE_UNTIL_EOS)
    req = chunked_request(p, in_route=False)

    async def read_body(limit: int) -> bytes:
        return b"from-the-wire"

    req.read_body = read_body
    assert await run_access(p, req) is None
    assert (guest(rt, "calls"), guest(rt, "last_len")) == (1, len(b"from-the-wire"))
    p.log(req, None)


async def test_local_response_answers_a_buffered_body() -> None:
    _rt, p = setup(DENY)
    req = make_request("POST", "/up", body=b"hello")
    req.route = SimpleNamespace(chain=PluginChain([(p, 0)]))
    resp = await run_access(p, req)
    assert resp is not None and resp.status == 403 and resp.body == b"denied"
    p.log(req, resp)


async def test_local_response_on_a_streamed_body_replaces_the_upstream() -> None:
    _rt, p = setup(DENY)
    req = chunked_request(p)
    assert await run_access(p, req) is None
    # the proxy abandons the upstream exchange and sends this response instead
    with pytest.raises(LocalReply) as e:
        await p.request_body_filter(req, b"abc", False)
    assert e.value.response.status == 403
    p.log(req, None)


async def test_access_returns_a_coroutine_only_to_read_the_body() -> None:
    """Sync-first ``access``: an answer when nothing waits, a coroutine otherwise."""
    rt, p = setup(CONTINUE)
    req = make_request("POST", "/up", body=b"hello")
    pending = p.access(req)
    assert inspect.isawaitable(pending)  # the body has to be read first
    assert await pending is None
    assert (guest(rt, "calls"), guest(rt, "last_len")) == (1, 5)
    p.log(req, None)
    # a body the proxy already holds goes to the guest without waiting
    req = make_request("POST", "/up", body=b"hello!")
    req.body = b"hello!"
    assert p.access(req) is None
    assert (guest(rt, "calls"), guest(rt, "last_len")) == (2, 6)
    p.log(req, None)


def test_access_answers_a_local_response_synchronously() -> None:
    _rt, p = setup(DENY)
    req = make_request("POST", "/up", body=b"hello")
    req.body = b"hello"
    resp = p.access(req)
    assert isinstance(resp, Response) and resp.status == 403 and resp.body == b"denied"
    p.log(req, resp)
