"""Every env host function and WASI function, driven from the probe module."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from edge.http.events import RequestHead
from edge.http.headers import Headers
from edge.wasm.abi import (
    AbiError,
    BufferType,
    MapType,
    Status,
    WasiErrno,
    deserialize_pairs,
    serialize_pairs,
)
from edge.wasm.context import RequestHeaderMap, ResponseHeaderMap
from edge.wasm.hostcalls import table as env_table
from edge.wasm.shared import SHARED_DATA
from edge.wasm.wasi import table as wasi_table
from tests.support.wasm import Probe, make_request, make_response

# the tables' signatures, from a real VM (the compiled hostcalls accept no stand-in)
_SIG_VM = Probe(plugin="sig", tenant="sig").vm
ENV = env_table(_SIG_VM)
WASI = wasi_table(_SIG_VM)


@pytest.fixture
def p() -> Probe:
    return Probe(plugin="acme/probe", tenant="t-probe", vm_config=b"vm-conf")


def s(ptr_len: tuple[int, int]) -> tuple[int, int]:
    return ptr_len


# -- hostile arguments to every function -----------------------------------------------

HOSTILE = [0xFFFFFFF0, 0x7FFFFFFF, 0x00FFFFFF]


@pytest.mark.parametrize("name", sorted(n for n in ENV if n.startswith("proxy_")))
@pytest.mark.parametrize("value", HOSTILE)
def test_env_functions_survive_hostile_pointers(p: Probe, name: str, value: int) -> None:
    params, _results, _ = ENV[name]
    st = p.stream()
    p.vm._enter(st.id)
    args = [value if t == "i32" else 5 for t in params]
    r = p.call(name, *args)
    assert r in {int(x) for x in Status}
    if name not in ("proxy_done", "proxy_continue_request", "proxy_continue_response"):
        assert r != Status.OK or name in {"proxy_set_tick_period_milliseconds"}, name
    # the VM is healthy afterwards
    ptr = p.out(1)[0]
    assert p.call("proxy_get_log_level", ptr) == Status.OK


@pytest.mark.parametrize("name", sorted(WASI))
@pytest.mark.parametrize("value", HOSTILE)
def test_wasi_functions_survive_hostile_pointers(p: Probe, name: str, value: int) -> None:
    if name == "proc_exit":
        return
    params, _, _ = WASI[name]
    args = [value if t == "i32" else 0 for t in params]
    r = p.call(name, *args, module="wasi_snapshot_preview1")
    assert r in {int(x) for x in WasiErrno}


@pytest.mark.parametrize(
    "name, args",
    [
        ("proxy_get_header_map_pairs", (0,)),
        ("proxy_get_buffer_bytes", (BufferType.HTTP_REQUEST_BODY, 0, 100)),
    ],
)
def test_allocator_out_of_range_pointer_gets_invalid_memory_access(
    p: Probe, name: str, args: tuple[int, ...]
) -> None:
    # hostcalls whose result the crossing copies into memory the guest allocates
    st = p.stream()
    st.req_body = b"a body"
    p.vm._enter(st.id)
    rp, rl = p.out(2)
    p.func("set_alloc_mode")(1)
    assert p.call(name, *args, rp, rl) == Status.INVALID_MEMORY_ACCESS
    assert p.vm.read(rl, 4) == b"\0\0\0\0"  # nothing written
    p.func("set_alloc_mode")(2)  # allocator returning 0
    assert p.call(name, *args, rp, rl) == Status.INVALID_MEMORY_ACCESS
    p.func("set_alloc_mode")(0)
    assert p.call(name, *args, rp, rl) == Status.OK
    ptr, n = struct.unpack("<II", p.vm.read(rp, 4) + p.vm.read(rl, 4))
    if name == "proxy_get_buffer_bytes":
        assert p.vm.read(ptr, n) == b"a body"
    else:
        assert p.vm.read(ptr, n) == RequestHeaderMap(st.req).serialized(0)
    # the result pointers themselves out of bounds
    assert p.call(name, *args, 0xFFFFFFF0, rl) == Status.INVALID_MEMORY_ACCESS


# -- logging, time, status -------------------------------------------------------------


def test_log_and_levels(p: Probe) -> None:
    p.vm.capture_logs = True
    assert p.call("proxy_log", 2, *p.put(b"hello")) == Status.OK
    assert p.vm.logs[-1] == "info: hello"
    assert p.call("proxy_log", 9, *p.put(b"x")) == Status.BAD_ARGUMENT
    assert p.call("proxy_log", 2, 0xFFFFFF00, 500) == Status.INVALID_MEMORY_ACCESS
    (lvl,) = p.out(1)
    assert p.call("proxy_get_log_level", lvl) == Status.OK
    assert 0 <= p.u32(lvl) <= 5


def test_time_and_tick_period(p: Probe) -> None:
    (t,) = p.out(1)
    assert p.call("proxy_get_current_time_nanoseconds", t) == Status.OK
    assert p.u64(t) > 1_600_000_000 * 10**9
    p.vm._enter(p.root.id)
    assert p.call("proxy_set_tick_period_milliseconds", 250) == Status.OK
    assert p.root.tick_ms == 250


def test_get_status(p: Probe) -> None:
    code, mp, ml = p.out(3)
    assert p.call("proxy_get_status", code, mp, ml) == Status.OK
    assert p.u32(code) == 0


def test_get_status_after_http_call(p: Probe) -> None:
    """As Envoy: a failed call leaves BROKEN_CONNECTION "reset", a completed one OK."""
    from edge.http.headers import Headers
    from edge.wasm.context import CallResult

    code, mp, ml = p.out(3)
    p.vm.http_call_response(p.root.id, CallResult(0, Headers(), b"", True), 1)
    assert p.call("proxy_get_status", code, mp, ml) == Status.OK
    assert p.u32(code) == Status.BROKEN_CONNECTION
    assert p.vm.read(p.u32(mp), p.u32(ml)) == b"reset"
    p.vm.http_call_response(p.root.id, CallResult(200, Headers(), b"ok"), 2)
    assert p.call("proxy_get_status", code, mp, ml) == Status.OK
    assert p.u32(code) == Status.OK and p.u32(ml) == 0


# -- contexts --------------------------------------------------------------------------


def test_effective_context_and_done(p: Probe) -> None:
    st = p.stream()
    p.vm._enter(p.root.id)
    assert p.call("proxy_done") == Status.NOT_FOUND  # root: nothing to finish
    assert p.call("proxy_set_effective_context", st.id) == Status.OK
    assert p.vm.cur_stream is st
    assert p.call("proxy_done") == Status.OK
    assert p.call("proxy_set_effective_context", 9999) == Status.BAD_ARGUMENT


def test_continue_close_and_local_response(p: Probe) -> None:
    st = p.stream()
    p.vm._enter(st.id)
    assert p.call("proxy_continue_stream", 0) == Status.OK and st.continued
    assert p.call("proxy_continue_stream", 7) == Status.BAD_ARGUMENT
    hdrs = serialize_pairs([(b"x-a", b"1"), (b"content-type", b"text/html")])
    r = p.call(
        "proxy_send_local_response",
        403,
        *p.put(b"denied"),
        *p.put(b"<b>no</b>"),
        *p.put(hdrs),
        0xFFFFFFFF,
    )
    assert r == Status.OK
    assert st.local is not None and st.local.status == 403
    assert st.local.body == b"<b>no</b>" and st.local.headers.get("x-a") == "1"
    assert p.call("proxy_send_local_response", 99, 0, 0, 0, 0, 0, 0, 0) == Status.BAD_ARGUMENT
    bad = serialize_pairs([(b"x", b"a\r\nInjected: 1")])
    r = p.call("proxy_send_local_response", 200, 0, 0, 0, 0, *p.put(bad), 0)
    assert r == Status.BAD_ARGUMENT
    st2 = p.stream()
    p.vm._enter(st2.id)
    assert p.call("proxy_close_stream", 0) == Status.OK and st2.closed


# -- header maps -----------------------------------------------------------------------


def _pairs(p: Probe, map_type: int) -> list[tuple[bytes, bytes]]:
    rp, rl = p.out(2)
    assert p.call("proxy_get_header_map_pairs", map_type, rp, rl) == Status.OK
    return deserialize_pairs(p.returned(rp, rl))


def test_request_header_map_pseudo_headers(p: Probe) -> None:
    req = make_request("POST", "/a/b?q=1", [("Host", "api.example.com"), ("X-Up", "v")])
    st = p.stream(req)
    p.vm._enter(st.id)
    assert _pairs(p, MapType.HTTP_REQUEST_HEADERS) == [
        (b":authority", b"api.example.com"),
        (b":path", b"/a/b?q=1"),
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b"x-up", b"v"),
    ]
    rp, rl = p.out(2)
    assert p.call("proxy_get_header_map_value", 0, *p.put(b"X-UP"), rp, rl) == Status.OK
    assert p.returned(rp, rl) == b"v"
    assert p.call("proxy_get_header_map_value", 0, *p.put(b"nope"), rp, rl) == Status.NOT_FOUND
    (size,) = p.out(1)
    assert p.call("proxy_get_header_map_size", 0, size) == Status.OK
    assert p.u32(size) == len(serialize_pairs(_pairs(p, 0)))
    # writes
    assert p.call("proxy_add_header_map_value", 0, *p.put(b"x-new"), *p.put(b"1")) == Status.OK
    assert req.headers.get("x-new") == "1"
    assert (b"x-new", b"1") in _pairs(p, 0)
    assert p.call("proxy_replace_header_map_value", 0, *p.put(b":path"), *p.put(b"/new?z")) == 0
    assert req.uri == "/new?z" and req.path == "/new" and req.query == "z"
    assert p.call("proxy_replace_header_map_value", 0, *p.put(b":method"), *p.put(b"put")) == 0
    assert req.method == "PUT"
    assert (
        p.call("proxy_replace_header_map_value", 0, *p.put(b":authority"), *p.put(b"other.test:81"))
        == 0
    )
    assert req.headers.get("host") == "other.test:81" and req.host == "other.test"
    assert p.call("proxy_remove_header_map_value", 0, *p.put(b"x-up")) == Status.OK
    assert "x-up" not in req.headers
    assert p.call("proxy_remove_header_map_value", 0, *p.put(b"absent")) == Status.OK
    bad = p.call("proxy_add_header_map_value", 0, *p.put(b"x-evil"), *p.put(b"a\nb: c"))
    assert bad == Status.BAD_ARGUMENT
    assert p.call("proxy_replace_header_map_value", 0, *p.put(b":path"), *p.put(b"nope")) == 2
    new = serialize_pairs([(b":path", b"/set"), (b"a", b"1"), (b"b", b"2")])
    assert p.call("proxy_set_header_map_pairs", 0, *p.put(new)) == Status.OK
    assert req.uri == "/set" and list(req.headers.lower_items())[:2] == [("a", "1"), ("b", "2")]
    assert req.headers.get("host") == "other.test:81"  # Host survives as :authority


def test_response_header_map_status(p: Probe) -> None:
    st = p.stream()
    resp = make_response(200, [("Server", "up")])
    st.set_response(resp)
    p.vm._enter(st.id)
    assert _pairs(p, MapType.HTTP_RESPONSE_HEADERS) == [(b":status", b"200"), (b"server", b"up")]
    assert p.call("proxy_replace_header_map_value", 2, *p.put(b":status"), *p.put(b"418")) == 0
    assert resp.status == 418
    assert p.call("proxy_replace_header_map_value", 2, *p.put(b":status"), *p.put(b"abc")) == 2
    assert p.call("proxy_add_header_map_value", 2, *p.put(b"x-r"), *p.put(b"1")) == 0
    assert resp.headers.get("x-r") == "1"
    # a field replaced goes to the response directly; a map made before does not keep
    # serving what it serialized within the same guest call
    m = st.resp_map
    assert (b"server", b"up") in deserialize_pairs(m.serialized(7))
    assert p.call("proxy_replace_header_map_value", 2, *p.put(b"server"), *p.put(b"e")) == 0
    assert resp.headers.get("server") == "e"
    assert (b"server", b"e") in deserialize_pairs(m.serialized(7))
    assert p.call("proxy_replace_header_map_value", 2, *p.put(b"x-new"), *p.put(b"2")) == 0
    assert [v for k, v in resp.headers.lower_items() if k == "x-new"] == ["2"]


@pytest.mark.parametrize("map_type", [1, 3])
def test_trailer_maps_are_empty(p: Probe, map_type: int) -> None:
    st = p.stream()
    p.vm._enter(st.id)
    assert _pairs(p, map_type) == []
    assert p.call("proxy_add_header_map_value", map_type, *p.put(b"t"), *p.put(b"1")) == 0


def test_unknown_and_unavailable_maps(p: Probe) -> None:
    st = p.stream()
    p.vm._enter(st.id)
    rp, rl = p.out(2)
    assert p.call("proxy_get_header_map_pairs", 99, rp, rl) == Status.BAD_ARGUMENT
    assert p.call("proxy_get_header_map_pairs", 6, rp, rl) == Status.NOT_FOUND
    assert p.call("proxy_get_header_map_pairs", 4, rp, rl) == Status.NOT_FOUND
    p.vm._enter(p.root.id)
    assert p.call("proxy_get_header_map_pairs", 0, rp, rl) == Status.NOT_FOUND


# -- buffers ---------------------------------------------------------------------------


def test_buffers(p: Probe) -> None:
    st = p.stream()
    st.req_body = b"hello world"
    p.vm._enter(st.id)
    rp, rl = p.out(2)
    assert p.call("proxy_get_buffer_bytes", 0, 0, 0xFFFFFFFF, rp, rl) == Status.OK
    assert p.returned(rp, rl) == b"hello world"
    assert p.call("proxy_get_buffer_bytes", 0, 6, 3, rp, rl) == Status.OK
    assert p.returned(rp, rl) == b"wor"
    assert p.call("proxy_get_buffer_bytes", 0, 50, 3, rp, rl) == Status.OK
    assert p.u32(rl) == 0
    ln, fl = p.out(2)
    assert p.call("proxy_get_buffer_status", 0, ln, fl) == Status.OK and p.u32(ln) == 11
    assert p.call("proxy_set_buffer_bytes", 0, 0, 0, *p.put(b">")) == Status.OK
    assert st.req_body == b">hello world"
    assert p.call("proxy_set_buffer_bytes", 0, 0, 0xFFFFFFFF, *p.put(b"new")) == Status.OK
    assert st.req_body == b"new"
    assert p.call("proxy_get_buffer_bytes", BufferType.VM_CONFIGURATION, 0, 99, rp, rl) == 0
    assert p.returned(rp, rl) == b"vm-conf"
    p.vm._enter(p.root.id)
    assert p.call("proxy_get_buffer_bytes", BufferType.PLUGIN_CONFIGURATION, 0, 99, rp, rl) == 0
    assert p.returned(rp, rl) == b"plugin-conf"
    assert p.call("proxy_get_buffer_bytes", 4, 0, 9, rp, rl) == Status.NOT_FOUND
    assert p.call("proxy_get_buffer_bytes", 42, 0, 9, rp, rl) == Status.BAD_ARGUMENT
    assert p.call("proxy_set_buffer_bytes", 7, 0, 0, *p.put(b"x")) == Status.NOT_FOUND


# -- properties ------------------------------------------------------------------------


def _prop(p: Probe, path: bytes) -> tuple[int, bytes]:
    rp, rl = p.out(2)
    r = p.call("proxy_get_property", *p.put(path), rp, rl)
    return r, p.returned(rp, rl) if r == Status.OK else b""


def test_properties(p: Probe) -> None:
    req = make_request("GET", "/p?x=1", [("Host", "h.test"), ("User-Agent", "ua/1")])
    st = p.stream(req)
    p.vm._enter(st.id)
    expect = {
        b"request\0path": b"/p?x=1",
        b"request\0url_path": b"/p",
        b"request\0host": b"h.test",
        b"request\0method": b"GET",
        b"request\0scheme": b"http",
        b"request\0id": b"rid-1",
        b"request\0protocol": b"HTTP/1.1",
        b"request\0useragent": b"ua/1",
        b"source\0address": b"127.0.0.1:40000",
        b"source\0port": struct.pack("<q", 40000),
        b"destination\0address": b"127.0.0.1:8080",
        b"destination\0port": struct.pack("<q", 8080),
        b"connection\0mtls": b"\0",
        b"plugin_name": b"acme/probe",
        b"plugin_root_id": b"probe_root",
        b"plugin_vm_id": b"",
        b"edge\0tenant": b"t-probe",
        b"node\0id": b"",
        b"request\0headers\0user-agent": b"ua/1",
    }
    for path, value in expect.items():
        assert _prop(p, path) == (Status.OK, value), path
    r, raw = _prop(p, b"request\0headers")
    assert r == Status.OK and (b"user-agent", b"ua/1") in deserialize_pairs(raw)
    assert _prop(p, b"no\0such")[0] == Status.NOT_FOUND
    assert p.call("proxy_set_property", *p.put(b"my\0prop"), *p.put(b"v")) == Status.OK
    assert _prop(p, b"my\0prop") == (Status.OK, b"v")
    p.vm._enter(p.root.id)
    assert _prop(p, b"plugin_root_id") == (Status.OK, b"probe_root")  # AssemblyScript


def test_proxy_protocol_tlvs_are_properties(p: Probe) -> None:
    req = make_request("GET", "/", [("Host", "h.test")])
    req.conn.proxy_tlvs = {"aws_vpce_id": "vpce-0abc", "unique_id": "u-1"}
    st = p.stream(req)
    p.vm._enter(st.id)
    assert _prop(p, b"edge\0proxy_protocol\0aws_vpce_id") == (Status.OK, b"vpce-0abc")
    r, raw = _prop(p, b"edge\0proxy_protocol")
    assert r == Status.OK
    pairs = sorted(deserialize_pairs(raw))
    assert pairs == [(b"aws_vpce_id", b"vpce-0abc"), (b"unique_id", b"u-1")]
    assert _prop(p, b"edge\0proxy_protocol\0alpn")[0] == Status.NOT_FOUND


# -- shared data and queues ------------------------------------------------------------


def test_shared_data_cas(p: Probe) -> None:
    key = p.put(b"counter-" + str(id(p)).encode())
    vp, vl, cas = p.out(3)
    assert p.call("proxy_get_shared_data", *key, vp, vl, cas) == Status.NOT_FOUND
    assert p.call("proxy_set_shared_data", *key, *p.put(b"1"), 0) == Status.OK
    assert p.call("proxy_get_shared_data", *key, vp, vl, cas) == Status.OK
    assert p.returned(vp, vl) == b"1"
    c1 = p.u32(cas)
    assert p.call("proxy_set_shared_data", *key, *p.put(b"2"), c1) == Status.OK
    # a second writer holding the old CAS loses
    assert p.call("proxy_set_shared_data", *key, *p.put(b"3"), c1) == Status.CAS_MISMATCH
    p.call("proxy_get_shared_data", *key, vp, vl, cas)
    assert p.returned(vp, vl) == b"2" and p.u32(cas) != c1


def test_shared_data_is_scoped_by_tenant() -> None:
    a = Probe(tenant="ta")
    b = Probe(tenant="tb")
    key = b"scoped-key"
    assert a.call("proxy_set_shared_data", *a.put(key), *a.put(b"secret"), 0) == Status.OK
    vp, vl, cas = b.out(3)
    assert b.call("proxy_get_shared_data", *b.put(key), vp, vl, cas) == Status.NOT_FOUND
    assert SHARED_DATA.get("ta", key) is not None


def test_shared_queues(p: Probe) -> None:
    p.vm._enter(p.root.id)
    (qid_slot,) = p.out(1)
    name = p.put(b"q-" + str(id(p)).encode())
    assert p.call("proxy_register_shared_queue", *name, qid_slot) == Status.OK
    qid = p.u32(qid_slot)
    (q2,) = p.out(1)
    assert p.call("proxy_resolve_shared_queue", 0, 0, *name, q2) == Status.OK
    assert p.u32(q2) == qid
    assert p.call("proxy_resolve_shared_queue", 0, 0, *p.put(b"unknown"), q2) == Status.NOT_FOUND
    vp, vl = p.out(2)
    assert p.call("proxy_dequeue_shared_queue", qid, vp, vl) == Status.EMPTY
    assert p.call("proxy_enqueue_shared_queue", qid, *p.put(b"m1")) == Status.OK
    assert p.vm.queue_ready == [(p.root.id, qid)]
    assert p.call("proxy_dequeue_shared_queue", qid, vp, vl) == Status.OK
    assert p.returned(vp, vl) == b"m1"
    assert p.call("proxy_enqueue_shared_queue", 999999, *p.put(b"x")) == Status.NOT_FOUND


# -- metrics ---------------------------------------------------------------------------


def test_metrics(p: Probe) -> None:
    from edge import metrics

    (mid_slot,) = p.out(1)
    assert p.call("proxy_define_metric", 0, *p.put(b"hits"), mid_slot) == Status.OK
    mid = p.u32(mid_slot)
    assert p.call("proxy_increment_metric", mid, 3) == Status.OK
    assert p.call("proxy_increment_metric", mid, -1) == Status.BAD_ARGUMENT
    (val,) = p.out(1)
    assert p.call("proxy_get_metric", mid, val) == Status.OK and p.u64(val) >= 3
    (g,) = p.out(1)
    assert p.call("proxy_define_metric", 1, *p.put(b"level"), g) == Status.OK
    assert p.call("proxy_record_metric", p.u32(g), 7) == Status.OK
    (h,) = p.out(1)
    assert p.call("proxy_define_metric", 2, *p.put(b"lat"), h) == Status.OK
    assert p.call("proxy_record_metric", p.u32(h), 12) == Status.OK
    assert p.call("proxy_define_metric", 9, *p.put(b"x"), h) == Status.BAD_ARGUMENT
    assert p.call("proxy_increment_metric", 123456, 1) == Status.NOT_FOUND
    text = metrics.render().decode()
    assert 'edge_wasm_acme_probe_hits_total{tenant="t-probe"}' in text
    assert 'edge_wasm_acme_probe_level{tenant="t-probe"} 7.0' in text


# -- http_call (argument checks; the call itself: tests/integration) -------------------


def test_http_call_argument_checks() -> None:
    p = Probe(http_call_upstreams=frozenset({"auth"}))
    st = p.stream()
    p.vm._enter(st.id)
    good = serialize_pairs([(b":method", b"GET"), (b":path", b"/"), (b":authority", b"a")])
    (tok,) = p.out(1)
    assert p.call("proxy_http_call", *p.put(b"auth"), *p.put(good), 0, 0, 0, 0, 500, tok) == 0
    assert st.pending and st.pending[0].token == p.u32(tok) and st.pending[0].timeout == 0.5
    r = p.call("proxy_http_call", *p.put(b"other"), *p.put(good), 0, 0, 0, 0, 500, tok)
    assert r == Status.BAD_ARGUMENT  # not in http_call_upstreams
    nopath = serialize_pairs([(b":method", b"GET"), (b":authority", b"a")])
    r = p.call("proxy_http_call", *p.put(b"auth"), *p.put(nopath), 0, 0, 0, 0, 500, tok)
    assert r == Status.BAD_ARGUMENT


@pytest.mark.parametrize(
    "name",
    [
        "proxy_grpc_call",
        "proxy_grpc_stream",
        "proxy_grpc_send",
        "proxy_grpc_cancel",
        "proxy_grpc_close",
        "proxy_call_foreign_function",
    ],
)
def test_grpc_and_foreign_unimplemented(p: Probe, name: str) -> None:
    n = len(ENV[name][0])
    assert p.call(name, *([0] * n)) == Status.UNIMPLEMENTED


def test_capabilities_denied_return_internal_failure(caplog: pytest.LogCaptureFixture) -> None:
    p = Probe(allowed=frozenset({"proxy_log"}))
    assert p.call("proxy_log", 2, *p.put(b"ok")) == Status.OK
    (slot,) = p.out(1)
    with caplog.at_level("WARNING", logger="edge.wasm"):
        for _ in range(3):
            assert p.call("proxy_define_metric", 0, *p.put(b"m"), slot) == Status.INTERNAL_FAILURE
    assert sum("allowed_capabilities" in r.message for r in caplog.records) == 1


# -- WASI ------------------------------------------------------------------------------

W = "wasi_snapshot_preview1"


def test_wasi_fd_write_becomes_log_lines(p: Probe) -> None:
    p.vm.capture_logs = True
    d1 = p.put(b"line one\nline ")
    d2 = p.put(b"two\n")
    iovs = p.put(struct.pack("<IIII", d1[0], d1[1], d2[0], d2[1]))
    (n,) = p.out(1)
    assert p.call("fd_write", 1, iovs[0], 2, n, module=W) == WasiErrno.SUCCESS
    assert p.u32(n) == d1[1] + d2[1]
    assert list(p.vm.logs)[-2:] == ["info: line one", "info: line two"]
    assert p.call("fd_write", 2, iovs[0], 1, n, module=W) == 0
    assert p.vm.logs[-1] == "error: line one"
    # the unterminated "line " waits for the rest of its line
    assert p.call("fd_write", 2, iovs[0], 1, n, module=W) == 0
    assert p.vm.logs[-1] == "error: line line one"
    assert p.call("fd_write", 5, iovs[0], 1, n, module=W) == WasiErrno.BADF
    bad = p.put(struct.pack("<II", 0xFFFFFF00, 0x1000))
    assert p.call("fd_write", 1, bad[0], 1, n, module=W) == WasiErrno.FAULT


def test_wasi_misc(p: Probe) -> None:
    (t,) = p.out(1)
    p.put(b"\0" * 8)
    assert p.call("clock_time_get", 0, 1, t, module=W) == 0 and p.u64(t) > 10**18
    assert p.call("clock_time_get", 1, 1, t, module=W) == 0
    assert p.call("clock_time_get", 77, 1, t, module=W) == WasiErrno.INVAL
    buf = p.put(b"\0" * 32)
    assert p.call("random_get", buf[0], 32, module=W) == 0
    assert p.vm.read(buf[0], 32) != b"\0" * 32
    assert p.call("random_get", buf[0], (64 << 10) + 1, module=W) == WasiErrno.INVAL
    a, b = p.out(2)
    for name in ("environ_sizes_get", "args_sizes_get"):
        assert p.call(name, a, b, module=W) == 0 and p.u32(a) == 0 and p.u32(b) == 0
    assert p.call("environ_get", a, b, module=W) == 0
    assert p.call("args_get", a, b, module=W) == 0
    for fd in (0, 3, 4):
        assert p.call("fd_prestat_get", fd, a, module=W) == WasiErrno.BADF
    st = p.put(b"\0" * 24)
    assert p.call("fd_fdstat_get", 1, st[0], module=W) == 0
    assert p.vm.read(st[0], 1) == b"\2"
    assert p.call("fd_fdstat_get", 9, st[0], module=W) == WasiErrno.BADF
    assert p.call("fd_fdstat_set_flags", 1, 4, module=W) == 0
    (nev,) = p.out(1)
    assert p.call("poll_oneoff", 0, 0, 0, nev, module=W) == 0 and p.u32(nev) == 0
    assert p.call("sched_yield", module=W) == 0


def test_wasi_proc_exit_traps(p: Probe) -> None:
    from edge.wasm.fastcall import GuestTrap

    with pytest.raises(GuestTrap) as ei:
        p.call("proc_exit", 3, module=W)
    assert ei.value.kind == "proc_exit"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (b"", b"v", "CR, LF or NUL"),
        (b"a\rb", b"v", "CR, LF or NUL"),
        (b"a", b"v\n", "CR, LF or NUL"),
        (b"a", b"\0", "CR, LF or NUL"),
        (b"\n:", b"v", "CR, LF or NUL"),
        (b"a b", b"v", "malformed"),
        (b"a:b", b"v", "malformed"),
    ],
)
def test_check_field_refuses_smuggling(name: bytes, value: bytes, message: str) -> None:
    from edge.wasm.context import check_field

    with pytest.raises(AbiError) as ei:
        check_field(name, value)
    assert ei.value.status == Status.BAD_ARGUMENT and message in str(ei.value)


def test_check_field_accepts_pseudo_headers_and_lowercases() -> None:
    from edge.wasm.context import check_field

    assert check_field(b":Path", b"/a b") == (":path", "/a b")
    assert check_field(b"X-A", b"") == ("x-a", "")


def test_an_untouched_repeated_request_reuses_its_map_and_an_edited_one_never() -> None:
    # the parse a repeated head shares (``Request.head_source``)
    source = RequestHead("GET", "/r", "1.1", Headers([]), None, False, True, False)

    def repeat(src: RequestHead = source) -> Any:
        req = make_request("GET", "/r", [("Host", "h.test"), ("X-A", "1")])
        req.head_source = src
        return req

    first = RequestHeaderMap(repeat()).serialized()
    again = RequestHeaderMap(repeat())
    assert again.serialized() is first  # the same bytes, not serialized anew
    again.add("x-edit", "1")  # an edit marks the request changed
    assert again.req.head_source is None
    assert (b"x-edit", b"1") in deserialize_pairs(again.serialized())
    # a request without a source (a plugin changed it, or a new head) is its own
    other = make_request("POST", "/other", [("Host", "h.test"), ("X-A", "1")])
    assert deserialize_pairs(RequestHeaderMap(other).serialized())[1] == (b":path", b"/other")
    assert RequestHeaderMap(repeat()).serialized() is first
    # what proxy_get_header_map_pairs gives a stream whose map the guest never used
    assert RequestHeaderMap.data_of(repeat()) is first
    assert RequestHeaderMap.data_of(other) == RequestHeaderMap(other).serialized()
    # each connection's parse keeps its own: requests alternating between two reuse both
    source2 = RequestHead("GET", "/r", "1.1", Headers([]), None, False, True, False)
    second = RequestHeaderMap.data_of(repeat(source2))
    assert second == first and second is not first
    assert RequestHeaderMap.data_of(repeat()) is first
    assert RequestHeaderMap.data_of(repeat(source2)) is second
    # a map made for another scheme is not the one for this request
    https = repeat()
    https.scheme = "https"
    assert (b":scheme", b"https") in deserialize_pairs(RequestHeaderMap.data_of(https))


def test_serialized_maps_are_their_pairs_and_follow_writes() -> None:
    """The one-pass serializer (and its per-call cache) gives exactly the pair format
    of the maps' ``pairs()``: Host only as :authority, names lower-cased."""
    req = make_request(
        "GET", "/p?q=1", [("Host", "h.test:8080"), ("X-A", "1"), ("host", "dup"), ("X-A", "\xe9")]
    )
    m = RequestHeaderMap(req)
    assert m.serialized() == serialize_pairs(m.pairs())
    assert m.serialized(7) == serialize_pairs(m.pairs())
    m.replace("x-b", "3")  # a write within the same guest call drops the cached form
    assert m.serialized(7) == serialize_pairs(m.pairs())
    assert (b"x-b", b"3") in deserialize_pairs(m.serialized(7))
    req.headers.add("X-C", "4")  # the host's own edits come between guest calls
    assert m.serialized(8) == serialize_pairs(m.pairs())
    assert RequestHeaderMap(make_request(headers=[])).serialized() == serialize_pairs(
        RequestHeaderMap(make_request(headers=[])).pairs()
    )
    resp = make_response(404, [("Content-Type", "text/plain"), ("X-Z", "z")])
    r = ResponseHeaderMap(resp)
    assert r.serialized(1) == serialize_pairs(r.pairs())
    r.replace(":status", "201")
    assert deserialize_pairs(r.serialized(1))[0] == (b":status", b"201")
    r.replace("x-z", "y")
    assert r.serialized(1) == serialize_pairs(r.pairs())
    empty = make_response(204)
    empty.headers = Headers()
    assert ResponseHeaderMap(empty).serialized() == serialize_pairs([(b":status", b"204")])


def test_request_pairs_read_before_and_after_an_edit_in_one_stream(p: Probe) -> None:
    """The first read of the request map makes no map object (``req_map_data``); an edit
    makes one, and later reads show the edit."""
    req = make_request("GET", "/", [("Host", "h"), ("X-A", "1")])
    st = p.stream(req)
    p.vm._enter(st.id)
    assert (b"x-a", b"1") in _pairs(p, 0) and st._req_map is None
    assert p.call("proxy_replace_header_map_value", 0, *p.put(b"x-a"), *p.put(b"2")) == 0
    assert (b"x-a", b"2") in _pairs(p, 0) and (b"x-a", b"1") not in _pairs(p, 0)
