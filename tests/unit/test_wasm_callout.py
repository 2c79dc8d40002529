"""edge.wasm.callout: upstream compilation and the synthetic request; and Pause
without a call-out (probe module)."""

from __future__ import annotations

import msgspec
import pytest

from edge.config.model import UpstreamSpec
from edge.plugins.base import CompileEnv
from edge.upstream.model import Upstream, compile_upstream
from edge.wasm.callout import compiled, synthetic_request
from edge.wasm.context import PendingCall
from edge.wasm.plugin import make_factory, run_access
from tests.support.wasm import make_request, make_runtime, wat


@pytest.mark.parametrize(
    "raw",
    [
        {"nodes": {"127.0.0.1:8080": 1}},
        {"nodes": [{"host": "a.test", "port": 9}], "scheme": "https"},
    ],
)
def test_compiled_accepts_spec_mapping_and_compiled(raw: dict) -> None:
    spec = msgspec.convert(raw, UpstreamSpec)
    up = compiled(raw, "u")
    assert isinstance(up, Upstream) and up.scheme == spec.scheme
    assert [n.addr for n in up.nodes] == [n.addr for n in compile_upstream(spec, "u").nodes]
    assert isinstance(compiled(spec, "u"), Upstream)
    assert compiled(up, "u") is up  # what the host compiled at config time is used as is
    assert compiled(None, "u") is None


def test_compiled_rejects_a_broken_mapping() -> None:
    assert compiled({"nodes": "nonsense"}, "u") is None


def test_synthetic_request_carries_the_call() -> None:
    call = PendingCall(
        7,
        "auth",
        "POST",
        "/check?x=1",
        "auth.internal:8080",
        [("X-From", "wasm"), ("content-length", "99"), ("host", "forged")],
        b"hi",
        1.0,
        3,
    )
    req = synthetic_request(call)
    assert (req.method, req.uri, req.path, req.query) == ("POST", "/check?x=1", "/check", "x=1")
    # Host is the call's authority; framing is the upstream client's business
    assert req.headers.get_all("host") == ["auth.internal:8080"]
    assert req.headers.get("x-from") == "wasm" and "content-length" not in req.headers
    assert req.head_source is None  # never reuses a downstream connection's cached head


async def test_pause_without_call_continues() -> None:
    rt = make_runtime(wat("probe"), plugin="probe/pause", tenant="t")
    p = make_factory(rt, "probe/pause", 0, "fail_closed", 1 << 20)("probe/pause", {}, CompileEnv())
    rt.vm.instance.exports(rt.vm.store)["set_req_action"](rt.vm.store, 1)  # Pause
    req = make_request()
    assert await run_access(p, req) is None
    p.log(req, None)
    assert rt.vm is not None and not rt.vm.streams  # the context was finished


def test_access_answers_without_a_coroutine_when_nothing_waits() -> None:
    rt = make_runtime(wat("probe"), plugin="probe/sync", tenant="t")
    p = make_factory(rt, "probe/sync", 0, "fail_closed", 1 << 20)("probe/sync", {}, CompileEnv())
    req = make_request()
    assert p.access(req) is None  # the answer itself, not an awaitable
    p.log(req, None)
    assert rt.vm is not None and not rt.vm.streams
