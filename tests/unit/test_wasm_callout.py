"""edge.wasm.callout.upstream_nodes, and Pause without a call-out (probe module)."""

from __future__ import annotations

import msgspec
import pytest

from edge.config.model import UpstreamSpec
from edge.plugins.base import CompileEnv
from edge.upstream.model import compile_upstream
from edge.wasm.callout import upstream_nodes
from edge.wasm.plugin import make_factory
from tests.support.wasm import make_request, make_runtime, wat


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        ({"nodes": {"127.0.0.1:8080": 1}}, ("http", [("127.0.0.1", 8080)])),
        ({"nodes": {"[::1]:81": 1}}, ("http", [("::1", 81)])),
        ({"nodes": [{"host": "a.test"}], "scheme": "https"}, ("https", [("a.test", 443)])),
        ({"nodes": [{"host": "a.test", "port": 9}]}, ("http", [("a.test", 9)])),
        ({"nodes": {}}, ("http", [])),
    ],
)
def test_upstream_nodes_from_spec_and_compiled(raw: dict, expect: tuple) -> None:
    spec = msgspec.convert(raw, UpstreamSpec)
    assert upstream_nodes(spec) == expect
    assert upstream_nodes(raw) == expect
    if expect[1]:
        assert upstream_nodes(compile_upstream(spec, "u")) == expect


async def test_pause_without_call_continues() -> None:
    rt = make_runtime(wat("probe"), plugin="probe/pause", tenant="t")
    p = make_factory(rt, "probe/pause", 0, "fail_closed", 1 << 20)("probe/pause", {}, CompileEnv())
    rt.vm.instance.exports(rt.vm.store)["set_req_action"](rt.vm.store, 1)  # Pause
    req = make_request()
    assert await p.access(req) is None
    p.log(req, None)
    assert rt.vm is not None and not rt.vm.streams  # the context was finished
