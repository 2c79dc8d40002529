"""edge.wasm.driver (batched callbacks) and the phases a WASM plugin is chained for."""

from __future__ import annotations

import pytest
import wasmtime

from edge.plugins.base import CompileEnv
from edge.plugins.chain import PluginChain
from edge.wasm.driver import END, ENDED, driver_wat
from edge.wasm.plugin import (
    WasmPlugin,
    lazy_context,
    make_factory,
    run_access,
    stream_ends,
    unchained_phases,
)
from edge.wasm.vm import PluginVM
from tests.support.wasm import make_request, make_response, make_runtime, make_vm, wat

# Records, per stream, what on_request_headers saw: the status of
# proxy_get_header_map_value(request map, "host") lands at 200 + 4*ctx. In
# on_context_create it switches the effective context to the root (1): the host
# must restore the stream's context before on_request_headers, batched or not.
# on_request_headers traps when the request carries header "boom".
SWITCHER = """
(module
  (import "env" "proxy_set_effective_context" (func $eff (param i32) (result i32)))
  (import "env" "proxy_get_header_map_value"
    (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "host")
  (data (i32.const 24) "boom")
  (data (i32.const 32) "done")
  (data (i32.const 40) "del")
  (global $heap (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32)
    (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get 0 i32.add global.set $heap
    local.get $p)
  (func (export "proxy_on_context_create") (param i32 i32)
    local.get 1
    (if (then (drop (call $eff (i32.const 1))))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (i32.store (i32.add (i32.const 200) (i32.mul (local.get 0) (i32.const 4)))
      (call $get (i32.const 0) (i32.const 16) (i32.const 4) (i32.const 100) (i32.const 104)))
    (if (i32.eqz (call $get (i32.const 0) (i32.const 24) (i32.const 4)
                            (i32.const 108) (i32.const 112)))
      (then unreachable))
    i32.const 0)
  (func (export "proxy_on_done") (param i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 4)))
    i32.const 1)
  (func (export "proxy_on_delete") (param i32)
    (drop (call $log (i32.const 2) (i32.const 40) (i32.const 3))))
)
"""


def _status_seen(vm: object, ctx: int) -> int:
    return int.from_bytes(vm.read(200 + 4 * ctx, 4), "little")  # type: ignore[attr-defined]


def test_batched_begin_restores_the_stream_context() -> None:
    vm = make_vm(wasmtime.wat2wasm(SWITCHER))
    assert vm.driver is not None and vm._batched()
    root = vm.create_root("", b"")
    st, action = vm.start_stream(root, make_request(), 2, 1)
    assert action == 0
    # found "host" in the stream's request map: the context came back from the root
    assert _status_seen(vm, st.id) == 0
    vm.logs.clear()
    vm.capture_logs = True
    vm.finish_stream(st)
    assert list(vm.logs) == ["info: done", "info: del"]
    assert st.id not in vm.streams


def test_unbatched_path_when_callbacks_are_wrapped() -> None:
    """The plugin toolkit wraps callbacks to time them: then each is called alone."""
    vm = make_vm(wasmtime.wat2wasm(SWITCHER))
    seen: list[str] = []
    for name in ("proxy_on_context_create", "proxy_on_request_headers", "proxy_on_done"):
        f = vm.cb[name]

        def timed(*a: int, f: object = f, name: str = name) -> object:
            seen.append(name)
            return f(*a)  # type: ignore[operator]

        vm.cb[name] = timed  # type: ignore[assignment]
    assert not vm._batched()
    root = vm.create_root("", b"")
    seen.clear()  # the root's own on_context_create
    st, _ = vm.start_stream(root, make_request(), 2, 1)
    assert _status_seen(vm, st.id) == 0
    vm.finish_stream(st)
    assert seen == ["proxy_on_context_create", "proxy_on_request_headers", "proxy_on_done"]


async def test_trap_in_request_headers_is_a_failure_not_root_only() -> None:
    rt = make_runtime(wasmtime.wat2wasm(SWITCHER))
    p = make_factory(rt, "t/switch", 0, "fail_closed", 1 << 20)("t/switch", {}, CompileEnv())
    req = make_request(headers=[("Host", "h"), ("Boom", "1")])
    r = await run_access(p, req)
    assert r is not None and r.status == 503
    p.log(req, r)
    assert rt.root_only == set()
    # the next request gets a new VM and passes
    req = make_request(headers=[("Host", "h")])
    assert await run_access(p, req) is None
    p.log(req, make_response())


def test_driver_wat_calls_only_present_exports() -> None:
    text = driver_wat(frozenset({"proxy_on_request_headers"}))
    assert "proxy_on_context_create" not in text and "proxy_on_done" not in text
    wasmtime.Module(wasmtime.Engine(), text)  # valid with any subset
    wasmtime.Module(wasmtime.Engine(), driver_wat(frozenset()))


def test_phases_follow_the_module_callbacks() -> None:
    """Without response callbacks the plugin is not in the response phases, so the
    gateway keeps the upstream's framing; direct calls still work."""
    rt = make_runtime(wasmtime.wat2wasm(SWITCHER))
    p = make_factory(rt, "t/switch", 0, "fail_closed", 1 << 20)("t/switch", {}, CompileEnv())
    assert isinstance(p, WasmPlugin)
    chain = PluginChain([(p, 0)])
    assert chain.access and chain.log
    assert not chain.header_filter and not chain.body_filter
    assert p.body_filter(make_request(), make_response(), b"x", True) == b"x"
    assert unchained_phases({"proxy_on_response_headers"}) == {
        "access",  # its context starts with the response (lazy_context)
        "request_body_filter",
        "body_filter",
    }
    assert unchained_phases({"proxy_on_response_headers", "proxy_on_log"}) == {
        "request_body_filter",
        "body_filter",
    }
    assert unchained_phases({"proxy_on_response_body", "proxy_on_request_body"}) == set()


# -- streams that end with their last callback (driver END) ------------------------------


def _plugin(name: str, batched: bool = True) -> WasmPlugin:
    """``name`` as a plugin; not ``batched``: its callbacks called one by one."""
    rt = make_runtime(wat(name))
    p = make_factory(rt, f"t/{name}", 0, "fail_closed", 1 << 20)(f"t/{name}", {}, CompileEnv())
    assert isinstance(p, WasmPlugin)
    assert rt.vm is not None
    if not batched:
        _wrap_callbacks(rt.vm)
    rt.vm.capture_logs = True
    rt.vm.logs.clear()
    return p


def _logs(p: WasmPlugin) -> list[str]:
    vm = p.rt.vm
    assert vm is not None
    out = [line.removeprefix("info: ") for line in vm.logs]
    vm.logs.clear()
    return out


def _wrap_callbacks(vm: PluginVM) -> None:
    """As the plugin toolkit does to time callbacks: the VM then calls them one by one."""
    for name, f in list(vm.cb.items()):
        if f is not None:
            vm.cb[name] = lambda *a, f=f: f(*a)  # type: ignore[misc]
    assert not vm._batched()


@pytest.mark.parametrize("batched", [True, False])
async def test_a_stream_with_no_callback_left_ends_with_its_request_headers(
    batched: bool,
) -> None:
    p = _plugin("ender", batched)
    assert p.rt.vm is not None
    for _ in range(2):
        req = make_request()
        assert await run_access(p, req) is None
        # on_delete ran in the call of on_request_headers: the log phase has nothing left
        assert _logs(p) == ["create", "headers", "delete"]
        assert p.rt.vm.streams == {}
        p.log(req, make_response())
        assert _logs(p) == []


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize(("mode", "action"), [("local", 0), ("pause", 1), ("call", 0)])
def test_a_stream_held_open_does_not_end_early(batched: bool, mode: str, action: int) -> None:
    """A local response (the response headers phase may still see it), a Pause or an
    http_call keeps the stream past its last callback: it ends in the log phase."""
    vm = make_vm(wat("ender"), http_call_upstreams=frozenset({"auth"}))
    if not batched:
        _wrap_callbacks(vm)
    root = vm.create_root("", b"")
    vm.capture_logs = True
    req = make_request(headers=[("Host", "h"), ("X-Mode", mode)])
    st, r = vm.start_stream(root, req, 3, 1, END)
    assert r == action and not st.done and st.id in vm.streams
    assert (st.local is not None) == (mode == "local")
    assert (st.pending is not None) == (mode == "call")
    vm.logs.clear()
    vm.finish_stream(st)
    assert list(vm.logs) == ["info: delete"] and st.id not in vm.streams
    # the next stream is not held by this one's
    st, r = vm.start_stream(root, make_request(), 2, 1, END)
    assert r == ENDED and st.done


async def test_a_request_body_keeps_the_stream_for_the_body_callback() -> None:
    p = _plugin("ender")
    req = make_request("POST", "/", [("Host", "h")], body=b"data")
    assert await run_access(p, req) is None
    assert _logs(p) == ["create", "headers", "body"]
    p.log(req, make_response())
    assert _logs(p) == ["delete"]


async def test_a_trap_ending_the_stream_costs_the_request_nothing() -> None:
    p = _plugin("ender")
    req = make_request(headers=[("Host", "h"), ("X-Mode", "trap")])
    assert await run_access(p, req) is None  # not a 503: the request's callbacks went through
    p.log(req, make_response())
    assert p.rt.vm is None and p.rt.last_error.startswith("unreachable")
    req = make_request()
    assert await run_access(p, req) is None  # a new VM
    assert p.rt.restarts == 1


@pytest.mark.parametrize("batched", [True, False])
async def test_a_module_without_request_callbacks_gets_its_context_with_the_response(
    batched: bool,
) -> None:
    p = _plugin("late", batched)
    assert p.rt.vm is not None
    chain = PluginChain([(p, 0)])
    assert not chain.access and chain.header_filter and chain.log
    req = make_request()
    resp = make_response()
    assert p.header_filter(req, resp) is None
    assert resp.headers.get("x-late") == "1"
    assert _logs(p) == ["create", "response", "delete"]
    p.log(req, resp)
    assert _logs(p) == [] and p.rt.vm.streams == {}


def test_where_streams_end_follows_the_exports() -> None:
    base = {"proxy_on_context_create", "proxy_on_delete"}
    guard = base | {"proxy_on_request_headers", "proxy_on_request_body"}
    assert stream_ends(guard) == (END, 0, 0) and not lazy_context(guard)
    headers = base | {"proxy_on_response_headers"}
    assert stream_ends(headers) == (0, 0, END) and lazy_context(headers)
    both = headers | {"proxy_on_request_headers"}
    assert stream_ends(both) == (0, 0, END) and not lazy_context(both)
    # on_log reads the whole exchange: the stream lasts until the log phase
    for extra in ({"proxy_on_log"}, {"proxy_on_response_body"}):
        assert stream_ends(both | extra) == (0, 0, 0)
    assert not lazy_context(headers | {"proxy_on_log"})
