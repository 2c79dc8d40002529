"""Hostile guests, each beside a healthy tenant that must keep answering correctly."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
import trio

from edge.errors import PluginError
from edge.plugins.base import CompileEnv, PluginConfigError
from edge.wasm.engine import MAX_MODULE_BYTES, ModuleError, load_module
from edge.wasm.plugin import WasmPlugin, make_factory, run_access
from edge.wasm.runtime import PluginRuntime
from tests.support.wasm import make_request, make_response, make_runtime, make_vm, wat


def plugin(
    mode: str,
    *,
    tenant: str = "bad",
    policy: str = "fail_closed",
    memory_mb: int = 16,
    rt: PluginRuntime | None = None,
) -> WasmPlugin:
    rt = rt or make_runtime(
        wat("hostile"), plugin=f"hostile/{tenant}", tenant=tenant, memory_bytes=memory_mb << 20
    )
    factory = make_factory(rt, f"hostile/{tenant}", 0, policy, 1 << 20)
    p = factory(f"hostile/{tenant}", {"conf": mode}, CompileEnv())
    assert isinstance(p, WasmPlugin)
    return p


@pytest.fixture
def healthy() -> WasmPlugin:
    return plugin("0", tenant="good")


async def serve(p: WasmPlugin, *, body: bytes = b"data") -> tuple[Any, Any, Any]:
    """Run every phase of one request through ``p``: (access result, header result, req)."""
    req = make_request("GET", "/", [("Host", "h")])
    r = await run_access(p, req)
    if r is not None:
        p.log(req, r)
        return r, None, req
    resp = make_response()
    h = p.header_filter(req, resp)
    if h is None:
        p.body_filter(req, resp, body, True)
    p.log(req, h or resp)
    return None, h, req


async def check_healthy(healthy: WasmPlugin) -> None:
    r, h, req = await serve(healthy)
    assert r is None and h is None
    assert req.headers.get("x-healthy") == "yes"


def assert_503(r: Any, name: str) -> None:
    assert r is not None and r.status == 503
    assert json.loads(r.body) == {"error_msg": f"wasm plugin {name} failed"}


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("a", "interrupt"),
        ("e", "interrupt"),
        ("u", "unreachable"),
        ("s", "stack_overflow"),
        ("x", "proc_exit"),
    ],
)
async def test_request_phase_failures_cost_one_request(
    healthy: WasmPlugin, mode: str, kind: str
) -> None:
    bad = plugin(mode)
    r, _, _ = await serve(bad)
    assert_503(r, "hostile/bad")
    assert bad.rt.vm is None and bad.rt.last_error.startswith(kind)
    await check_healthy(healthy)
    # the next request gets a fresh VM (first failure: no backoff) and fails the same way
    r, _, _ = await serve(bad)
    assert_503(r, "hostile/bad")
    assert bad.rt.restarts == 1
    # now backing off: refused without running the guest
    r, _, _ = await serve(bad)
    assert_503(r, "hostile/bad")
    assert bad.rt.restarts == 1
    await check_healthy(healthy)


async def test_fail_open_skips_the_plugin(healthy: WasmPlugin) -> None:
    bad = plugin("a", policy="fail_open")
    r, h, req = await serve(bad)
    assert r is None and h is None and "x-healthy" not in req.headers
    assert bad.rt.vm is None
    await check_healthy(healthy)


async def test_loop_in_response_headers(healthy: WasmPlugin) -> None:
    bad = plugin("b")
    r, h, _ = await serve(bad)
    assert r is None
    assert_503(h, "hostile/bad")
    await check_healthy(healthy)


async def test_loop_in_response_body_aborts_the_response(healthy: WasmPlugin) -> None:
    bad = plugin("c")
    req = make_request()
    assert await run_access(bad, req) is None
    resp = make_response()
    assert bad.header_filter(req, resp) is None
    with pytest.raises(PluginError):
        bad.body_filter(req, resp, b"chunk", False)
    bad.log(req, resp)
    assert bad.rt.vm is None
    await check_healthy(healthy)


async def test_loop_in_on_done(healthy: WasmPlugin) -> None:
    bad = plugin("d")
    r, h, _ = await serve(bad)  # the response already went out; the VM is replaced
    assert r is None and h is None
    assert bad.rt.vm is None and bad.rt.last_error.startswith("interrupt")
    await check_healthy(healthy)


async def test_loop_in_on_tick(healthy: WasmPlugin) -> None:
    bad = plugin("f")
    assert bad.rt.vm is not None
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bad.rt.run_ticks)
            while not bad.rt.last_error.startswith("interrupt"):
                await trio.sleep(0.005)
            nursery.cancel_scope.cancel()
    await check_healthy(healthy)


def test_loop_in_on_configure_is_a_config_error() -> None:
    with pytest.raises(PluginConfigError) as ei:
        plugin("g")
    assert ei.value.field == "conf"
    assert "interrupt" in ei.value.message and "hostile/bad" in ei.value.message


def test_configure_false_is_a_config_error_with_module_log() -> None:
    with pytest.raises(PluginConfigError) as ei:
        plugin("r")
    assert "proxy_on_configure returned false" in ei.value.message
    assert "module log: info: configured" in ei.value.message


async def test_memory_bomb_gets_failed_allocations(healthy: WasmPlugin) -> None:
    bad = plugin("m", memory_mb=8)
    r, h, req = await serve(bad)
    assert r is None and h is None
    assert req.headers.get("x-grow-failed") == "yes"
    vm = bad.rt.vm
    assert vm is not None and vm.gm is not None and vm.gm.size <= 8 << 20
    await check_healthy(healthy)


async def test_allocator_out_of_range_pointers(healthy: WasmPlugin) -> None:
    bad = plugin("p")
    r, h, req = await serve(bad)
    assert r is None and h is None
    assert req.headers.get("x-status") == "invalid"  # INVALID_MEMORY_ACCESS, no crash
    assert bad.rt.vm is not None
    await check_healthy(healthy)


def test_nonexistent_host_function_is_a_clear_load_error() -> None:
    import wasmtime

    data = wasmtime.wat2wasm(
        '(module (import "env" "does_not_exist" (func (param i32)))'
        ' (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))'
        ' (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1"))'
        ' (func (export "malloc") (param i32) (result i32) i32.const 0))'
    )
    with pytest.raises(ModuleError) as ei:
        make_vm(data)
    assert "env.does_not_exist" in ei.value.message


def test_missing_proxy_import_is_stubbed_and_wrong_type_is_named() -> None:
    import wasmtime

    base = (
        ' (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_0"))'
        ' (func (export "malloc") (param i32) (result i32) i32.const 0))'
    )
    # a future proxy_* function gets an UNIMPLEMENTED stub, never a link failure
    make_vm(
        wasmtime.wat2wasm(
            '(module (import "env" "proxy_future_call" (func (param i32) (result i32)))' + base
        )
    )
    with pytest.raises(ModuleError) as ei:
        make_vm(
            wasmtime.wat2wasm(
                '(module (import "env" "proxy_log" (func (param i32) (result i32)))' + base
            )
        )
    assert "env.proxy_log with type (i32) -> (i32)" in ei.value.message


def test_module_without_abi_export_is_refused() -> None:
    import wasmtime

    data = wasmtime.wat2wasm(
        '(module (memory (export "memory") 1)'
        ' (func (export "malloc") (param i32) (result i32) i32.const 0))'
    )
    with pytest.raises(ModuleError, match="proxy_abi_version"):
        make_vm(data)


def _fifty_mb_module() -> bytes:
    """A valid module carrying a 50 MB custom section."""
    payload = b"\x04blob" + b"\0" * (50 << 20)
    size = len(payload)
    leb = bytearray()
    while True:
        b = size & 0x7F
        size >>= 7
        leb.append(b | (0x80 if size else 0))
        if not size:
            break
    return b"\0asm" + struct.pack("<I", 1) + b"\x00" + bytes(leb) + payload


def test_fifty_megabyte_module_is_refused_before_compiling(tmp_path: Any) -> None:
    data = _fifty_mb_module()
    assert len(data) > MAX_MODULE_BYTES
    with pytest.raises(ModuleError) as ei:
        load_module(data, None, str(tmp_path))
    assert ei.value.field == "file" and "MiB" in ei.value.message


def test_sha256_mismatch(tmp_path: Any) -> None:
    with pytest.raises(ModuleError) as ei:
        load_module(wat("hostile"), "0" * 64, str(tmp_path))
    assert ei.value.field == "sha256"


def test_compiled_artifacts_are_cached_on_disk(tmp_path: Any) -> None:
    data = wat("hostile")
    load_module(data, None, str(tmp_path))
    files = list(tmp_path.iterdir())
    assert (
        len(files) == 1 and files[0].name.endswith(".cwasm") and "wasmtime50.0.1" in files[0].name
    )
    m, _ = load_module(data, None, str(tmp_path))  # deserialized this time
    assert {e.name for e in m.exports} >= {"proxy_on_request_headers"}


async def test_backoff_is_not_extended_by_refused_requests() -> None:
    bad = plugin("u")
    for _ in range(2):  # first failure, then the immediate recreate fails too
        r, _, _ = await serve(bad)
        assert_503(r, "hostile/bad")
    retry_at, failures = bad.rt.retry_at, bad.rt.failures
    for _ in range(5):
        r, _, _ = await serve(bad)
        assert_503(r, "hostile/bad")
    assert (bad.rt.retry_at, bad.rt.failures) == (retry_at, failures)
