"""The ``env`` host functions of proxy-wasm ABI 0.2.1, bound to one VM.

Every pointer and length from the guest is checked against linear memory
(``INVALID_MEMORY_ACCESS``), every enum and size against the spec
(``BAD_ARGUMENT``); statuses are the ones the spec names, because SDKs panic on
anything else. A Python exception that is not an ``AbiError`` is a host bug: it
becomes a trap (fastcall), i.e. the failure policy, never a crashed worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from edge.wasm import properties
from edge.wasm.abi import (
    AbiError,
    BufferType,
    LogLevel,
    MapType,
    Status,
    deserialize_pairs,
    pack_u64,
    slice_buffer,
    splice_buffer,
)
from edge.wasm.context import PendingCall, check_field, field_error, local_response
from edge.wasm.fastcall import field_hostcall
from edge.wasm.shared import SHARED_DATA, SHARED_QUEUES
from edge.wasm.stats import GUEST_METRICS

if TYPE_CHECKING:
    from edge.wasm.vm import PluginVM

log = logging.getLogger("edge.wasm")

Entry = tuple[tuple[str, ...], tuple[str, ...], Callable[..., Any]]

I = "i32"  # noqa: E741 - reads as the wasm type
L = "i64"
MAX_LOG_BYTES = 64 << 10
MAX_KEY_BYTES: Final = 64 << 10
MAX_BODY_SET = 16 << 20
MAX_CALL_TIMEOUT_MS = 60_000
_OK: Final = int(Status.OK)  # a plain int: the hot hostcalls' answer

# proxy-wasm LogLevel -> Python's logging level, for the guest's log lines
PY_LEVELS = {
    0: 5,  # TRACE below DEBUG
    1: logging.DEBUG,
    2: logging.INFO,
    3: logging.WARNING,
    4: logging.ERROR,
    5: logging.CRITICAL,
}

# Python's logging level -> proxy-wasm LogLevel, for proxy_get_log_level
_PROXY_LEVEL = [
    (5, LogLevel.TRACE),
    (10, LogLevel.DEBUG),
    (20, LogLevel.INFO),
    (30, LogLevel.WARN),
    (40, LogLevel.ERROR),
]


class _NoStore:
    """Stands in for the FastStore of a VM built without one: nothing is cached."""

    seq = -1


_NO_STORE = _NoStore()


class _Guarded:
    """A hostcall answering its ``AbiError`` as the status; ``raw`` is the bare
    function (the VM has fastcall handle AbiError instead: one call layer less)."""

    __slots__ = ("raw",)

    def __init__(self, fn: Callable[..., int]) -> None:
        self.raw = fn

    def __call__(self, *args: int) -> int:
        try:
            return self.raw(*args)
        except AbiError as e:
            return int(e.status)


class _FieldCall(_Guarded):
    """A hostcall of a map type and a header field in guest memory: ``on_field(map_type,
    field)`` takes the field as ``GuestMemory.field`` reads it, which the VM has the C
    crossing do itself (``fastcall.define_host``'s ``field_limit``)."""

    __slots__ = ("on_field",)

    def __init__(self, vm: PluginVM, on_field: Callable[[int, Any], int]) -> None:
        super().__init__(field_hostcall(vm.fs, on_field, MAX_KEY_BYTES))  # type: ignore[arg-type]
        self.on_field = on_field


class _Gives(_Guarded):
    """A hostcall whose last two parameters are where its result goes: ``gives`` takes
    the others and answers the bytes, which the VM has the C crossing copy into guest
    memory itself (``fastcall.define_host``'s ``gives``), or a status."""

    __slots__ = ("gives",)

    def __init__(self, vm: PluginVM, gives: Callable[..., bytes | int]) -> None:
        def raw(*args: int) -> int:
            r = gives(*args[:-2])
            return vm.give(args[-2], args[-1], r) if isinstance(r, bytes) else r

        super().__init__(raw)
        self.gives = gives


def table(vm: PluginVM) -> dict[str, Entry]:
    spec = vm.spec
    # the VM's FastStore: its ``seq`` (the current guest call) keys serialized maps
    fs: Any = getattr(vm, "fs", None) or _NO_STORE

    def text(ptr: int, size: int, limit: int = MAX_KEY_BYTES) -> bytes:
        if size > limit:
            raise AbiError(Status.BAD_ARGUMENT, "argument too long")
        return vm.read(ptr, size)

    def stream() -> Any:
        st = vm.cur_stream
        if st is None:
            raise AbiError(Status.NOT_FOUND, "no HTTP context is current")
        return st

    def header_map(map_type: int) -> Any:
        # the request and response maps of the current stream: nearly every call
        if map_type == 0 or map_type == 2:
            st = vm.cur_stream
            if st is not None:
                return st.req_map if map_type == 0 else st.resp_map
        if map_type in (MapType.HTTP_CALL_RESPONSE_HEADERS, MapType.HTTP_CALL_RESPONSE_TRAILERS):
            res = vm.call_result
            if res is None:
                raise AbiError(Status.NOT_FOUND, "no http_call response is current")
            if map_type == MapType.HTTP_CALL_RESPONSE_TRAILERS:
                from edge.wasm.context import EMPTY_MAP

                return EMPTY_MAP
            return res.header_map()
        if map_type > MapType.HTTP_CALL_RESPONSE_TRAILERS:
            raise AbiError(Status.BAD_ARGUMENT, "unknown map type")
        if map_type in (MapType.GRPC_CALL_INITIAL_METADATA, MapType.GRPC_CALL_TRAILING_METADATA):
            raise AbiError(Status.NOT_FOUND, "no gRPC call")
        m = stream().header_map(map_type)
        if m is None:
            raise AbiError(Status.NOT_FOUND, "map not available")
        return m

    # -- logging, time, status -----------------------------------------------------

    def proxy_log(level: int, ptr: int, size: int) -> int:
        if level > LogLevel.CRITICAL:
            return Status.BAD_ARGUMENT
        if not vm.capture_logs and not log.isEnabledFor(PY_LEVELS.get(level, logging.INFO)):
            # nobody reads it: the same checks as ``text``, without the copy and decode
            if size > MAX_LOG_BYTES:
                raise AbiError(Status.BAD_ARGUMENT, "argument too long")
            gm = vm.gm
            if ptr + size > len(gm.view() if gm is not None else vm.mem()):
                raise AbiError(Status.INVALID_MEMORY_ACCESS, "read out of bounds")
            return Status.OK
        msg = text(ptr, size, MAX_LOG_BYTES)
        vm.guest_log(level, msg.decode("utf-8", "replace"))
        return Status.OK

    def proxy_get_log_level(ret: int) -> int:
        lvl = LogLevel.CRITICAL
        for py, pl in _PROXY_LEVEL:
            if log.isEnabledFor(py):  # cached by logging: no hierarchy walk
                lvl = pl
                break
        vm.write_u32(ret, int(lvl))
        return Status.OK

    def proxy_get_current_time_nanoseconds(ret: int) -> int:
        vm.write(ret, pack_u64(time.time_ns()))
        return Status.OK

    def proxy_set_tick_period_milliseconds(ms: int) -> int:
        root = vm.cur_root
        if root is None:
            return Status.BAD_ARGUMENT
        root.tick_ms = ms
        root.next_tick = time.monotonic() + ms / 1000.0
        return Status.OK

    def proxy_get_status(ret_code: int, ret_ptr: int, ret_len: int) -> int:
        vm.check_out(ret_code)
        code, msg = vm.status
        vm.write_u32(ret_code, code)
        return vm.give(ret_ptr, ret_len, msg)

    # -- contexts and streams ------------------------------------------------------

    def proxy_set_effective_context(ctx: int) -> int:
        return Status.OK if vm.set_effective(ctx) else Status.BAD_ARGUMENT

    def proxy_done() -> int:
        return Status.OK if vm.cur_stream is not None else Status.NOT_FOUND

    def proxy_continue_stream(stype: int) -> int:
        if stype > 1:
            return Status.BAD_ARGUMENT
        stream().continued = True
        return Status.OK

    def proxy_close_stream(stype: int) -> int:
        if stype > 1:
            return Status.BAD_ARGUMENT
        st = stream()
        st.closed = True
        if st.local is None:
            st.local = local_response(502, b"", [], "closed by wasm plugin")
        vm.hold()
        return Status.OK

    def proxy_send_local_response(
        status: int, dp: int, dl: int, bp: int, bl: int, hp: int, hl: int, grpc: int
    ) -> int:
        if not 200 <= status <= 599:
            return Status.BAD_ARGUMENT
        details = text(dp, dl).decode("utf-8", "replace")
        body = text(bp, bl, MAX_BODY_SET)
        raw = text(hp, hl, 1 << 20)
        pairs = [check_field(k, v) for k, v in deserialize_pairs(raw)]
        st = stream()
        st.local = local_response(status, body, pairs, details)
        vm.hold()
        return Status.OK

    # -- header maps ---------------------------------------------------------------

    def proxy_get_header_map_size(map_type: int, ret: int) -> int:
        m = header_map(map_type)
        vm.check_out(ret)
        vm.write_u32(ret, len(m.serialized(fs.seq)))
        return Status.OK

    def get_header_map_pairs(map_type: int) -> bytes:
        st = vm.cur_stream
        data = st.req_map_data() if map_type == 0 and st is not None else None
        if data is None:
            data = header_map(map_type).serialized(fs.seq)
        return data  # type: ignore[no-any-return]

    def proxy_set_header_map_pairs(map_type: int, ptr: int, size: int) -> int:
        m = header_map(map_type)
        pairs = [check_field(k, v) for k, v in deserialize_pairs(text(ptr, size, 1 << 20))]
        m.set_all(pairs)
        return Status.OK

    def proxy_get_header_map_value(map_type: int, kp: int, kl: int, rp: int, rl: int) -> int:
        st = vm.cur_stream
        if map_type == 0 and st is not None:
            m = st.req_map
        else:
            m = header_map(map_type)
        key = text(kp, kl).decode("latin-1").lower()
        v = m.get(key)
        if v is None:
            vm.check_out(rp, rl)
            return Status.NOT_FOUND
        return vm.give(rp, rl, v.encode("latin-1"))

    # field hostcalls (``_FieldCall``): ``r`` is the (name, value) the guest passed,
    # read and checked in one step (``GuestMemory.field``), or the code of its fault

    def add_header(map_type: int, r: tuple[str, str] | int) -> int:
        st = vm.cur_stream
        if map_type == 0 and st is not None:
            m = st.req_map
        else:
            m = header_map(map_type)
        if isinstance(r, int):
            field_error(r)
        m.add(r[0], r[1])
        return _OK

    def replace_header(map_type: int, r: tuple[str, str] | int) -> int:
        st = vm.cur_stream
        if st is not None and map_type == 2:
            # a response header filter's edit, the common one
            if isinstance(r, int):
                field_error(r)
            elif st.replace_resp_field(r[0], r[1]):
                return _OK
            m = st.resp_map
        elif map_type == 0 and st is not None:
            m = st.req_map
        else:
            m = header_map(map_type)
        if isinstance(r, int):
            field_error(r)
        m.replace(r[0], r[1])
        return _OK

    def proxy_remove_header_map_value(map_type: int, kp: int, kl: int) -> int:
        m = header_map(map_type)
        m.remove(text(kp, kl).decode("latin-1").lower())
        return Status.OK

    # -- buffers -------------------------------------------------------------------

    def buffer(btype: int) -> bytes:
        if btype == BufferType.HTTP_REQUEST_BODY:
            return stream().req_body
        if btype == BufferType.HTTP_RESPONSE_BODY:
            return stream().resp_body
        if btype == BufferType.HTTP_CALL_RESPONSE_BODY:
            if vm.call_result is None:
                raise AbiError(Status.NOT_FOUND, "no http_call response is current")
            return vm.call_result.body
        if btype == BufferType.VM_CONFIGURATION:
            return spec.vm_config
        if btype == BufferType.PLUGIN_CONFIGURATION:
            if vm.cur_root is None:
                raise AbiError(Status.NOT_FOUND, "no root context")
            return vm.cur_root.conf
        if btype > BufferType.FOREIGN_FUNCTION_ARGUMENTS:
            raise AbiError(Status.BAD_ARGUMENT, "unknown buffer type")
        raise AbiError(Status.NOT_FOUND, "buffer not available")

    def get_buffer_bytes(btype: int, start: int, max_size: int) -> bytes:
        data = buffer(btype)
        s, e = slice_buffer(len(data), start, max_size)
        return data[s:e]

    def proxy_get_buffer_status(btype: int, ret_len: int, ret_flags: int) -> int:
        data = buffer(btype)
        vm.check_out(ret_len, ret_flags)
        vm.write_u32(ret_len, len(data))
        vm.write_u32(ret_flags, 0)
        return Status.OK

    def proxy_set_buffer_bytes(btype: int, start: int, size: int, dp: int, dl: int) -> int:
        new = text(dp, dl, MAX_BODY_SET)
        if btype == BufferType.HTTP_REQUEST_BODY:
            st = stream()
            st.req_body = splice_buffer(st.req_body, start, size, new)
        elif btype == BufferType.HTTP_RESPONSE_BODY:
            st = stream()
            st.resp_body = splice_buffer(st.resp_body, start, size, new)
        elif btype > BufferType.FOREIGN_FUNCTION_ARGUMENTS:
            return Status.BAD_ARGUMENT
        else:
            return Status.NOT_FOUND
        return Status.OK

    # -- properties ----------------------------------------------------------------

    def proxy_get_property(pp: int, pl: int, rp: int, rl: int) -> int:
        path = properties.split(text(pp, pl))
        st = vm.cur_stream
        if st is not None and st.properties is not None and path in st.properties:
            return vm.give(rp, rl, st.properties[path])
        value = properties.lookup(vm, st, path)
        if value is None:
            vm.check_out(rp, rl)
            return Status.NOT_FOUND
        return vm.give(rp, rl, value)

    def proxy_set_property(pp: int, pl: int, vp: int, vl: int) -> int:
        path = properties.split(text(pp, pl))
        value = text(vp, vl, 1 << 20)
        st = vm.cur_stream
        if st is None:
            return Status.NOT_FOUND
        props = st.properties
        if props is None:
            props = st.properties = {}
        elif len(props) >= 256:
            return Status.INTERNAL_FAILURE
        props[path] = value
        return Status.OK

    # -- shared data and queues ----------------------------------------------------

    def proxy_get_shared_data(kp: int, kl: int, rp: int, rl: int, rcas: int) -> int:
        key = text(kp, kl)
        vm.check_out(rp, rl, rcas)
        got = SHARED_DATA.get(spec.tenant, key)
        if got is None:
            return Status.NOT_FOUND
        vm.give(rp, rl, got[0])
        vm.write_u32(rcas, got[1])
        return Status.OK

    def proxy_set_shared_data(kp: int, kl: int, vp: int, vl: int, cas: int) -> int:
        key = text(kp, kl)
        value = text(vp, vl, 1 << 20)
        return SHARED_DATA.set(spec.tenant, key, value, cas)

    def proxy_register_shared_queue(np_: int, nl: int, ret: int) -> int:
        name = text(np_, nl)
        vm.check_out(ret)
        root = vm.cur_root
        rid = root.id if root is not None else 0

        def notify(qid: int, rid: int = rid) -> None:
            if not vm.dead:
                vm.queue_ready.append((rid, qid))

        qid = SHARED_QUEUES.register(spec.tenant, spec.vm_id, name, notify)
        vm.write_u32(ret, qid)
        return Status.OK

    def proxy_resolve_shared_queue(vp: int, vl: int, np_: int, nl: int, ret: int) -> int:
        vm_id = text(vp, vl).decode("utf-8", "replace") or spec.vm_id
        name = text(np_, nl)
        vm.check_out(ret)
        qid = SHARED_QUEUES.resolve(spec.tenant, vm_id, name)
        if qid is None:
            return Status.NOT_FOUND
        vm.write_u32(ret, qid)
        return Status.OK

    def proxy_enqueue_shared_queue(qid: int, vp: int, vl: int) -> int:
        return SHARED_QUEUES.enqueue(spec.tenant, qid, text(vp, vl, 1 << 20))

    def proxy_dequeue_shared_queue(qid: int, rp: int, rl: int) -> int:
        vm.check_out(rp, rl)
        got = SHARED_QUEUES.dequeue(spec.tenant, qid)
        if isinstance(got, Status):
            return got
        return vm.give(rp, rl, got)

    # -- metrics -------------------------------------------------------------------

    def proxy_define_metric(mtype: int, np_: int, nl: int, ret: int) -> int:
        name = text(np_, nl, 256).decode("utf-8", "replace")
        vm.check_out(ret)
        status, mid = GUEST_METRICS.define(spec.plugin, spec.tenant, mtype, name)
        if status == Status.OK:
            vm.write_u32(ret, mid)
        return status

    def proxy_increment_metric(mid: int, delta: int) -> int:
        return GUEST_METRICS.increment(spec.plugin, spec.tenant, mid, delta)

    def proxy_record_metric(mid: int, value: int) -> int:
        return GUEST_METRICS.record(spec.plugin, spec.tenant, mid, value & 0xFFFFFFFFFFFFFFFF)

    def proxy_get_metric(mid: int, ret: int) -> int:
        vm.check_out(ret)
        status, value = GUEST_METRICS.get(spec.plugin, spec.tenant, mid)
        if status == Status.OK:
            vm.write(ret, pack_u64(value))
        return status

    # -- http_call -----------------------------------------------------------------

    def proxy_http_call(
        up: int,
        ul: int,
        hp: int,
        hl: int,
        bp: int,
        bl: int,
        tp: int,
        tl: int,
        timeout_ms: int,
        ret: int,
    ) -> int:
        upstream = text(up, ul, 256).decode("utf-8", "replace")
        raw = text(hp, hl, 1 << 20)
        body = text(bp, bl, MAX_BODY_SET)
        text(tp, tl, 1 << 20)  # trailers: checked, not sent on HTTP/1.1
        vm.check_out(ret)
        if upstream not in spec.http_call_upstreams:
            vm.guest_log(LogLevel.WARN, f"http_call to upstream {upstream!r} not allowed")
            return Status.BAD_ARGUMENT
        pairs = [check_field(k, v) for k, v in deserialize_pairs(raw)]
        pseudo = {k: v for k, v in pairs if k[:1] == ":"}
        if not (pseudo.get(":method") and pseudo.get(":path") and pseudo.get(":authority")):
            return Status.BAD_ARGUMENT
        token = vm.new_token()
        timeout = min(timeout_ms or MAX_CALL_TIMEOUT_MS, MAX_CALL_TIMEOUT_MS) / 1000.0
        st = vm.cur_stream
        call = PendingCall(
            token,
            upstream,
            pseudo[":method"],
            pseudo[":path"],
            pseudo[":authority"],
            [(k, v) for k, v in pairs if k[:1] != ":"],
            body,
            timeout,
            st.id if st is not None else 0,
        )
        if st is not None:
            if st.pending is not None:
                st.pending.append(call)
            else:
                st.pending = [call]
        else:
            vm.pending_root_calls.append(call)
        vm.calls_waiting = True
        vm.hold()
        vm.write_u32(ret, token)
        return Status.OK

    # -- gRPC and foreign functions: not offered --------------------------------------

    def unimplemented(*args: int) -> int:
        return Status.UNIMPLEMENTED

    def proxy_call_foreign_function(np_: int, nl: int, ap: int, al: int, rp: int, rl: int) -> int:
        return Status.UNIMPLEMENTED

    def emscripten_notify_memory_growth(_idx: int) -> None:
        return None

    def abort(mp: int, fp: int, line: int, col: int) -> None:
        from edge.wasm.fastcall import GuestTrap

        raise GuestTrap("abort", f"guest abort at line {line}:{col}")

    fns: dict[str, Entry] = {}

    def add(
        name: str, fn: Callable[..., Any], n: int, params: tuple[str, ...] | None = None
    ) -> None:
        fns[name] = (params or (I,) * n, (I,), _Guarded(fn))

    add("proxy_log", proxy_log, 3)
    add("proxy_get_log_level", proxy_get_log_level, 1)
    add("proxy_get_current_time_nanoseconds", proxy_get_current_time_nanoseconds, 1)
    add("proxy_set_tick_period_milliseconds", proxy_set_tick_period_milliseconds, 1)
    add("proxy_get_status", proxy_get_status, 3)
    add("proxy_set_effective_context", proxy_set_effective_context, 1)
    add("proxy_done", proxy_done, 0)
    add("proxy_continue_stream", proxy_continue_stream, 1)
    add("proxy_close_stream", proxy_close_stream, 1)
    add("proxy_send_local_response", proxy_send_local_response, 8)
    add("proxy_get_header_map_size", proxy_get_header_map_size, 2)
    fns["proxy_get_header_map_pairs"] = ((I,) * 3, (I,), _Gives(vm, get_header_map_pairs))
    add("proxy_set_header_map_pairs", proxy_set_header_map_pairs, 3)
    add("proxy_get_header_map_value", proxy_get_header_map_value, 5)
    fns["proxy_add_header_map_value"] = ((I,) * 5, (I,), _FieldCall(vm, add_header))
    fns["proxy_replace_header_map_value"] = ((I,) * 5, (I,), _FieldCall(vm, replace_header))
    add("proxy_remove_header_map_value", proxy_remove_header_map_value, 3)
    fns["proxy_get_buffer_bytes"] = ((I,) * 5, (I,), _Gives(vm, get_buffer_bytes))
    add("proxy_get_buffer_status", proxy_get_buffer_status, 3)
    add("proxy_set_buffer_bytes", proxy_set_buffer_bytes, 5)
    add("proxy_get_property", proxy_get_property, 4)
    add("proxy_set_property", proxy_set_property, 4)
    add("proxy_get_shared_data", proxy_get_shared_data, 5)
    add("proxy_set_shared_data", proxy_set_shared_data, 5)
    add("proxy_register_shared_queue", proxy_register_shared_queue, 3)
    add("proxy_resolve_shared_queue", proxy_resolve_shared_queue, 5)
    add("proxy_enqueue_shared_queue", proxy_enqueue_shared_queue, 3)
    add("proxy_dequeue_shared_queue", proxy_dequeue_shared_queue, 3)
    add("proxy_define_metric", proxy_define_metric, 4)
    add("proxy_increment_metric", proxy_increment_metric, 2, params=(I, L))
    add("proxy_record_metric", proxy_record_metric, 2, params=(I, L))
    add("proxy_get_metric", proxy_get_metric, 2)
    add("proxy_http_call", proxy_http_call, 10)
    add("proxy_call_foreign_function", proxy_call_foreign_function, 6)
    add("proxy_grpc_call", unimplemented, 12)
    add("proxy_grpc_stream", unimplemented, 9)
    add("proxy_grpc_send", unimplemented, 4)
    add("proxy_grpc_cancel", unimplemented, 1)
    add("proxy_grpc_close", unimplemented, 1)
    # a stream type or "continue request/response" from ABI 0.1 SDKs
    add("proxy_continue_request", unimplemented, 0)
    add("proxy_continue_response", unimplemented, 0)

    allowed = spec.allowed
    if allowed is not None:
        for name, (params, results, _fn) in list(fns.items()):
            if name not in allowed:
                fns[name] = (params, results, _denied(vm, name))
    fns["emscripten_notify_memory_growth"] = ((I,), (), emscripten_notify_memory_growth)
    fns["abort"] = ((I, I, I, I), (), abort)
    return fns


def _denied(vm: PluginVM, name: str) -> Callable[..., int]:
    """Envoy's restricted-capability stub: INTERNAL_FAILURE, and one log line."""

    def fn(*args: int) -> int:
        if name not in vm.denied_logged:
            vm.denied_logged.add(name)
            log.warning(
                "wasm[%s]: host function %s is not in allowed_capabilities",
                vm.spec.plugin,
                name,
            )
        return Status.INTERNAL_FAILURE

    return fn
