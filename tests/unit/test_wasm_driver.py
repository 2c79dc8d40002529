"""edge.wasm.driver (batched callbacks) and the phases a WASM plugin is chained for."""

from __future__ import annotations

import wasmtime

from edge.plugins.base import CompileEnv
from edge.plugins.chain import PluginChain
from edge.wasm.driver import driver_wat
from edge.wasm.plugin import WasmPlugin, make_factory, run_access, unchained_phases
from tests.support.wasm import make_request, make_response, make_runtime, make_vm

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
        "request_body_filter",
        "body_filter",
    }
    assert unchained_phases({"proxy_on_response_body", "proxy_on_request_body"}) == set()
