"""A small, self-contained proxy-wasm host on stock wasmtime-py, for plugin authors and tests.

It runs one module through one request the way the gateway does (root context, then an
HTTP context per request: request headers -> body -> [upstream] -> response headers ->
body -> done/log/delete), with the same ABI statuses, and records what the client and the
upstream would see. It is slow on purpose (stock ``Func`` calls, fuel for the CPU budget):
it exists so an author can test a plugin without a gateway, and so the SDK tests do not
depend on the production host's internals. The production host is ``edge.wasm``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import wasmtime

OK, NOT_FOUND, BAD_ARGUMENT, SERIALIZATION_FAILURE = 0, 1, 2, 3
INVALID_MEMORY_ACCESS, EMPTY, CAS_MISMATCH, UNIMPLEMENTED = 6, 7, 8, 12
CONTINUE, PAUSE = 0, 1
LEVELS = ("trace", "debug", "info", "warn", "error", "critical")
# request body, response body, http call body, vm config, plugin config
BUF_REQ, BUF_RESP, BUF_CALL, BUF_VM, BUF_PLUGIN = 0, 1, 4, 6, 7
MAP_REQ, MAP_REQ_TRL, MAP_RESP, MAP_RESP_TRL, MAP_CALL, MAP_CALL_TRL = 0, 1, 2, 3, 6, 7
ROOT_ID, STREAM_ID = 1, 2
# a budget large enough for real work, small enough that a loop ends a test quickly
DEFAULT_FUEL = 2_000_000_000


class PluginTrap(Exception):
    """The guest trapped (panic, unreachable, out of fuel, proc_exit, bad memory access)."""


def encode_pairs(pairs: list[tuple[bytes, bytes]]) -> bytes:
    out = [struct.pack("<I", len(pairs))]
    out += [struct.pack("<II", len(k), len(v)) for k, v in pairs]
    for k, v in pairs:
        out.append(k + b"\0" + v + b"\0")
    return b"".join(out)


def decode_pairs(buf: bytes) -> list[tuple[bytes, bytes]]:
    if len(buf) <= 1:
        return []
    (n,) = struct.unpack_from("<I", buf, 0)
    if n > len(buf) // 10:
        raise ValueError("header map: pair count larger than the buffer")
    pos = 4 + 8 * n
    pairs = []
    for i in range(n):
        kl, vl = struct.unpack_from("<II", buf, 4 + 8 * i)
        key = buf[pos : pos + kl]
        pos += kl + 1
        val = buf[pos : pos + vl]
        pos += vl + 1
        if pos > len(buf):
            raise ValueError("header map: truncated")
        pairs.append((bytes(key), bytes(val)))
    return pairs


@dataclass
class HttpMessage:
    headers: list[tuple[str, str]]
    body: bytes = b""
    status: int | None = None


@dataclass
class Outcome:
    """What one request through the plugin produced."""

    client: HttpMessage | None = None
    upstream: HttpMessage | None = None
    local_response: bool = False
    logs: list[tuple[str, str]] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=dict)
    timings_us: dict[str, float] = field(default_factory=dict)
    trap: str | None = None
    http_calls: list[dict[str, Any]] = field(default_factory=list)


HttpCallHandler = Callable[
    [str, list[tuple[str, str]], bytes], tuple[int, list[tuple[str, str]], bytes] | None
]


class Host:
    """One VM of one plugin (root context 1, configured once), reusable across requests."""

    def __init__(
        self,
        module: bytes | str,
        *,
        plugin_config: bytes = b"",
        vm_config: bytes = b"",
        properties: dict[str, bytes] | None = None,
        plugin_name: str = "plugin",
        root_id: str = "",
        http_call: HttpCallHandler | None = None,
        max_body_bytes: int = 1 << 20,
        memory_mb: int = 64,
        fuel: int = DEFAULT_FUEL,
        log_level: int = 0,
    ) -> None:
        cfg = wasmtime.Config()
        cfg.consume_fuel = True
        self.engine = wasmtime.Engine(cfg)
        self.module = (
            wasmtime.Module.from_file(self.engine, module)
            if isinstance(module, str)
            else wasmtime.Module(self.engine, module)
        )
        self.store = wasmtime.Store(self.engine)
        self.store.set_limits(memory_size=memory_mb << 20)
        self.fuel = fuel
        self.plugin_config = plugin_config
        self.vm_config = vm_config
        self.properties = {
            "plugin_name": plugin_name.encode(),
            "plugin_root_id": root_id.encode(),
            "edge.tenant": b"local",
            "node.id": b"local",
            **(properties or {}),
        }
        self.http_call_handler = http_call
        self.max_body_bytes = max_body_bytes
        self.log_level = log_level
        self.logs: list[tuple[str, str]] = []
        self.metrics: dict[int, list[Any]] = {}  # id -> [name, kind, value]
        self.shared: dict[bytes, tuple[bytes, int]] = {}
        self.queues: dict[int, list[bytes]] = {}
        self.queue_names: dict[bytes, int] = {}
        self.tick_ms = 0
        self.timings_us: dict[str, float] = {}
        self._reset_stream()
        self.ready = False
        self.configured = False
        self._define_imports()
        self._start()

    # ----- lifecycle -----

    def _reset_stream(self) -> None:
        self.req_headers: list[tuple[bytes, bytes]] = []
        self.req_trailers: list[tuple[bytes, bytes]] = []
        self.resp_headers: list[tuple[bytes, bytes]] = []
        self.resp_trailers: list[tuple[bytes, bytes]] = []
        self.buffers: dict[int, bytearray] = {BUF_REQ: bytearray(), BUF_RESP: bytearray()}
        self.call_resp: tuple[list[tuple[bytes, bytes]], bytes] = ([], b"")
        self.local: HttpMessage | None = None
        self.pending_calls: list[tuple[int, str, list[tuple[str, str]], bytes]] = []
        self.continued: set[int] = set()
        self.next_token = 1
        self.calls_made: list[dict[str, Any]] = []

    def _define_imports(self) -> None:
        self.linker = wasmtime.Linker(self.engine)
        self.linker.allow_shadowing = True
        seen: set[tuple[str, str]] = set()
        for imp in self.module.imports:
            key = (imp.module, imp.name)
            if key in seen or not isinstance(imp.type, wasmtime.FuncType):
                continue
            seen.add(key)
            impl = getattr(self, "h_" + imp.name, None)
            if imp.module in ("wasi_snapshot_preview1", "wasi_unstable"):
                impl = getattr(self, "wasi_" + imp.name, None)
            if impl is None:
                impl = self._unimplemented(imp.name, imp.type)
            self.linker.define_func(imp.module, imp.name, imp.type, impl, access_caller=True)

    @staticmethod
    def _unimplemented(name: str, ty: wasmtime.FuncType) -> Callable[..., Any]:
        has_result = bool(ty.results)

        def stub(caller: wasmtime.Caller, *args: Any) -> int | None:
            return UNIMPLEMENTED if has_result else None

        return stub

    def _call(self, name: str, *args: int) -> int | None:
        fn = self.instance.exports(self.store).get(name)
        if fn is None:
            return None
        self.store.set_fuel(self.fuel)
        t0 = time.perf_counter()
        try:
            return fn(self.store, *args)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            raise PluginTrap(f"{name}: {_trap_text(e)}") from e
        finally:
            self.timings_us[name] = (
                self.timings_us.get(name, 0.0) + (time.perf_counter() - t0) * 1e6
            )

    def _start(self) -> None:
        try:
            self.store.set_fuel(self.fuel)
            self.instance = self.linker.instantiate(self.store, self.module)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            raise PluginTrap(f"instantiate: {str(e).splitlines()[0]}") from e
        exports = self.instance.exports(self.store)
        if "proxy_abi_version_0_2_1" not in exports and "proxy_abi_version_0_2_0" not in exports:
            raise PluginTrap("module exports no proxy_abi_version_0_2_x: not a proxy-wasm module")
        self.memory = exports["memory"]
        self.alloc = exports.get("proxy_on_memory_allocate") or exports.get("malloc")
        if "_initialize" in exports:
            self._call("_initialize")
        elif "_start" in exports:
            self._call("_start")
        self._call("proxy_on_context_create", ROOT_ID, 0)
        self.ready = bool(self._call("proxy_on_vm_start", ROOT_ID, len(self.vm_config)))
        if self.ready:
            self.configured = bool(
                self._call("proxy_on_configure", ROOT_ID, len(self.plugin_config))
            )

    def tick(self) -> None:
        self._call("proxy_on_tick", ROOT_ID)

    def metric_values(self) -> dict[str, int]:
        return {name: value for name, _kind, value in self.metrics.values()}

    # ----- one request -----

    def run(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        upstream: HttpMessage | None = None,
        *,
        authority: str = "localhost",
        chunk_size: int = 0,
    ) -> Outcome:
        """Runs one request; ``upstream`` is the canned answer (default 200, empty)."""
        self._reset_stream()
        self.logs = []
        self.timings_us = {}
        out = Outcome(logs=self.logs, timings_us=self.timings_us, http_calls=self.calls_made)
        if upstream is None:
            upstream = HttpMessage(headers=[], body=b"", status=200)
        self.req_headers = [
            (b":method", method.encode()),
            (b":path", path.encode()),
            (b":authority", authority.encode()),
            (b":scheme", b"http"),
        ] + [(k.lower().encode(), v.encode()) for k, v in headers]
        try:
            self._call("proxy_on_context_create", STREAM_ID, ROOT_ID)
            sent = self._stream(
                "proxy_on_request_headers",
                "proxy_on_request_body",
                BUF_REQ,
                0,
                self.req_headers,
                body,
                chunk_size,
            )
            if self.local is None:
                out.upstream = HttpMessage(headers=_text(self.req_headers), body=sent, status=None)
                self.resp_headers = [(b":status", str(upstream.status or 200).encode())] + [
                    (k.lower().encode(), v.encode()) for k, v in upstream.headers
                ]
                sent = self._stream(
                    "proxy_on_response_headers",
                    "proxy_on_response_body",
                    BUF_RESP,
                    1,
                    self.resp_headers,
                    upstream.body,
                    chunk_size,
                )
                if self.local is None:
                    status = int(dict(self.resp_headers).get(b":status", b"200"))
                    hdrs = [(k, v) for k, v in self.resp_headers if not k.startswith(b":")]
                    out.client = HttpMessage(headers=_text(hdrs), body=sent, status=status)
            if self.local is not None:
                out.client = self.local
                out.local_response = True
            self._call("proxy_on_done", STREAM_ID)
            self._call("proxy_on_log", STREAM_ID)
            self._call("proxy_on_delete", STREAM_ID)
        except PluginTrap as e:
            out.trap = str(e)
        out.metrics = self.metric_values()
        return out

    def _stream(
        self,
        on_headers: str,
        on_body: str,
        buf: int,
        stream: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        chunk_size: int,
    ) -> bytes:
        """Headers then body chunks through the plugin; returns the bytes passed on."""
        action = self._call(on_headers, STREAM_ID, len(headers), int(not body))
        self._run_calls()
        if self.local is not None:
            return b""
        headers_paused = action == PAUSE and stream not in self.continued
        chunks = (
            [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
            if chunk_size and body
            else ([body] if body else [])
        )
        passed = bytearray()
        buffer = self.buffers[buf]
        for i, chunk in enumerate(chunks):
            eos = i == len(chunks) - 1
            buffer += chunk
            if len(buffer) > self.max_body_bytes:
                self.local = HttpMessage(
                    headers=[], body=b"body larger than max_body_bytes", status=413
                )
                return b""
            self.continued.discard(stream)
            action = self._call(on_body, STREAM_ID, len(buffer), int(eos))
            self._run_calls()
            if self.local is not None:
                return b""
            if action == PAUSE and stream not in self.continued and not eos:
                continue
            passed += buffer
            buffer.clear()
            headers_paused = False
        if headers_paused and stream not in self.continued and not chunks:
            raise PluginTrap(f"{on_headers} paused with no body and nothing to resume it")
        passed += buffer
        buffer.clear()
        return bytes(passed)

    def _run_calls(self) -> None:
        while self.pending_calls:
            token, upstream, headers, body = self.pending_calls.pop(0)
            self.calls_made.append({"upstream": upstream, "headers": headers, "body": body})
            answer = (
                self.http_call_handler(upstream, headers, body) if self.http_call_handler else None
            )
            if answer is None:
                self.call_resp = ([], b"")
                self._call("proxy_on_http_call_response", ROOT_ID, token, 0, 0, 0)
                continue
            status, hdrs, rbody = answer
            self.call_resp = (
                [(b":status", str(status).encode())] + [(k.encode(), v.encode()) for k, v in hdrs],
                rbody,
            )
            self._call(
                "proxy_on_http_call_response", ROOT_ID, token, len(self.call_resp[0]), len(rbody), 0
            )

    # ----- memory -----

    def _read(self, caller: wasmtime.Caller, ptr: int, size: int) -> bytes:
        mem = caller.get("memory")
        if ptr < 0 or size < 0 or ptr + size > mem.data_len(caller):
            raise _BadMemory
        return bytes(mem.read(caller, ptr, ptr + size))

    def _write(self, caller: wasmtime.Caller, ptr: int, data: bytes) -> None:
        mem = caller.get("memory")
        if ptr < 0 or ptr + len(data) > mem.data_len(caller):
            raise _BadMemory
        mem.write(caller, data, ptr)

    def _u32(self, caller: wasmtime.Caller, ptr: int, value: int) -> None:
        self._write(caller, ptr, struct.pack("<I", value & 0xFFFFFFFF))

    def _give(self, caller: wasmtime.Caller, data: bytes, ret_ptr: int, ret_len: int) -> int:
        """Copies ``data`` into guest memory it allocates (the ABI's return convention)."""
        if not data:
            self._u32(caller, ret_ptr, 0)
            self._u32(caller, ret_len, 0)
            return OK
        alloc = caller.get("proxy_on_memory_allocate") or caller.get("malloc")
        addr = alloc(caller, len(data))
        if not addr:
            return INVALID_MEMORY_ACCESS
        self._write(caller, addr, data)
        self._u32(caller, ret_ptr, addr)
        self._u32(caller, ret_len, len(data))
        return OK

    # ----- host functions (env) -----

    def h_proxy_log(self, caller: wasmtime.Caller, level: int, ptr: int, size: int) -> int:
        try:
            msg = self._read(caller, ptr, size).decode("utf-8", "replace")
        except _BadMemory:
            return INVALID_MEMORY_ACCESS
        if level >= self.log_level:
            self.logs.append((LEVELS[min(max(level, 0), 5)], msg))
        return OK

    def h_proxy_get_log_level(self, caller: wasmtime.Caller, ret: int) -> int:
        self._u32(caller, ret, self.log_level)
        return OK

    def h_proxy_get_current_time_nanoseconds(self, caller: wasmtime.Caller, ret: int) -> int:
        self._write(caller, ret, struct.pack("<Q", time.time_ns()))
        return OK

    def h_proxy_set_tick_period_milliseconds(self, caller: wasmtime.Caller, ms: int) -> int:
        self.tick_ms = ms
        return OK

    def _buffer(self, kind: int) -> bytes | bytearray | None:
        if kind in (BUF_REQ, BUF_RESP):
            return self.buffers[kind]
        if kind == BUF_CALL:
            return self.call_resp[1]
        if kind == BUF_VM:
            return self.vm_config
        if kind == BUF_PLUGIN:
            return self.plugin_config
        return None

    def h_proxy_get_buffer_bytes(
        self, caller: wasmtime.Caller, kind: int, start: int, size: int, rp: int, rl: int
    ) -> int:
        data = self._buffer(kind)
        if data is None:
            return NOT_FOUND
        start &= 0xFFFFFFFF
        size &= 0xFFFFFFFF
        return self._give(caller, bytes(data[start : start + size]), rp, rl)

    def h_proxy_set_buffer_bytes(
        self, caller: wasmtime.Caller, kind: int, start: int, size: int, ptr: int, n: int
    ) -> int:
        if kind not in (BUF_REQ, BUF_RESP):
            return BAD_ARGUMENT
        value = self._read(caller, ptr, n)
        buf = self.buffers[kind]
        start &= 0xFFFFFFFF
        size &= 0xFFFFFFFF
        if start >= len(buf):
            buf += value
        else:
            buf[start : start + size] = value
        return OK

    def h_proxy_get_buffer_status(
        self, caller: wasmtime.Caller, kind: int, rl: int, rf: int
    ) -> int:
        data = self._buffer(kind)
        if data is None:
            return NOT_FOUND
        self._u32(caller, rl, len(data))
        self._u32(caller, rf, 0)
        return OK

    def _map(self, kind: int) -> list[tuple[bytes, bytes]] | None:
        return {
            MAP_REQ: self.req_headers,
            MAP_REQ_TRL: self.req_trailers,
            MAP_RESP: self.resp_headers,
            MAP_RESP_TRL: self.resp_trailers,
            MAP_CALL: self.call_resp[0],
        }.get(kind)

    def h_proxy_get_header_map_size(self, caller: wasmtime.Caller, kind: int, ret: int) -> int:
        m = self._map(kind)
        if m is None:
            return BAD_ARGUMENT
        self._u32(caller, ret, len(encode_pairs(m)))
        return OK

    def h_proxy_get_header_map_pairs(
        self, caller: wasmtime.Caller, kind: int, rp: int, rl: int
    ) -> int:
        m = self._map(kind)
        if m is None:
            return BAD_ARGUMENT
        return self._give(caller, encode_pairs(m), rp, rl)

    def h_proxy_set_header_map_pairs(
        self, caller: wasmtime.Caller, kind: int, ptr: int, n: int
    ) -> int:
        m = self._map(kind)
        if m is None:
            return BAD_ARGUMENT
        try:
            pairs = decode_pairs(self._read(caller, ptr, n))
        except ValueError:
            return BAD_ARGUMENT
        m[:] = [(k.lower(), v) for k, v in pairs]
        return OK

    def h_proxy_get_header_map_value(
        self, caller: wasmtime.Caller, kind: int, kp: int, kl: int, rp: int, rl: int
    ) -> int:
        m = self._map(kind)
        if m is None:
            return BAD_ARGUMENT
        key = self._read(caller, kp, kl).lower()
        for k, v in m:
            if k == key:
                return self._give(caller, v, rp, rl)
        return NOT_FOUND

    def h_proxy_add_header_map_value(
        self, caller: wasmtime.Caller, kind: int, kp: int, kl: int, vp: int, vl: int
    ) -> int:
        m = self._map(kind)
        if m is None:
            return BAD_ARGUMENT
        m.append((self._read(caller, kp, kl).lower(), self._read(caller, vp, vl)))
        return OK

    def h_proxy_replace_header_map_value(
        self, caller: wasmtime.Caller, kind: int, kp: int, kl: int, vp: int, vl: int
    ) -> int:
        m = self._map(kind)
        if m is None:
            return BAD_ARGUMENT
        key = self._read(caller, kp, kl).lower()
        value = self._read(caller, vp, vl)
        for i, (k, _) in enumerate(m):
            if k == key:
                m[i] = (key, value)
                m[:] = [p for j, p in enumerate(m) if j <= i or p[0] != key]
                return OK
        m.append((key, value))
        return OK

    def h_proxy_remove_header_map_value(
        self, caller: wasmtime.Caller, kind: int, kp: int, kl: int
    ) -> int:
        m = self._map(kind)
        if m is None:
            return BAD_ARGUMENT
        key = self._read(caller, kp, kl).lower()
        m[:] = [p for p in m if p[0] != key]
        return OK

    def h_proxy_get_property(
        self, caller: wasmtime.Caller, pp: int, pl: int, rp: int, rl: int
    ) -> int:
        path = self._read(caller, pp, pl).decode("utf-8", "replace").replace("\0", ".")
        headers = dict(self.req_headers)
        derived = {
            "request.path": headers.get(b":path"),
            "request.url_path": headers.get(b":path", b"").split(b"?")[0],
            "request.method": headers.get(b":method"),
            "request.host": headers.get(b":authority"),
            "request.scheme": headers.get(b":scheme"),
        }
        value = self.properties.get(path)
        if value is None:
            value = derived.get(path)
        if value is None:
            return NOT_FOUND
        return self._give(caller, value, rp, rl)

    def h_proxy_set_property(
        self, caller: wasmtime.Caller, pp: int, pl: int, vp: int, vl: int
    ) -> int:
        path = self._read(caller, pp, pl).decode("utf-8", "replace").replace("\0", ".")
        self.properties[path] = self._read(caller, vp, vl)
        return OK

    def h_proxy_get_shared_data(
        self, caller: wasmtime.Caller, kp: int, kl: int, rp: int, rl: int, rc: int
    ) -> int:
        key = self._read(caller, kp, kl)
        if key not in self.shared:
            return NOT_FOUND
        value, cas = self.shared[key]
        self._u32(caller, rc, cas)
        return self._give(caller, value, rp, rl)

    def h_proxy_set_shared_data(
        self, caller: wasmtime.Caller, kp: int, kl: int, vp: int, vl: int, cas: int
    ) -> int:
        key = self._read(caller, kp, kl)
        current = self.shared.get(key)
        if cas and current is not None and current[1] != cas:
            return CAS_MISMATCH
        self.shared[key] = (self._read(caller, vp, vl), (current[1] + 1) if current else 1)
        return OK

    def h_proxy_register_shared_queue(
        self, caller: wasmtime.Caller, np: int, nl: int, rid: int
    ) -> int:
        name = self._read(caller, np, nl)
        qid = self.queue_names.setdefault(name, len(self.queue_names) + 1)
        self.queues.setdefault(qid, [])
        self._u32(caller, rid, qid)
        return OK

    def h_proxy_resolve_shared_queue(
        self, caller: wasmtime.Caller, vp: int, vl: int, np: int, nl: int, rid: int
    ) -> int:
        qid = self.queue_names.get(self._read(caller, np, nl))
        if qid is None:
            return NOT_FOUND
        self._u32(caller, rid, qid)
        return OK

    def h_proxy_enqueue_shared_queue(
        self, caller: wasmtime.Caller, qid: int, vp: int, vl: int
    ) -> int:
        if qid not in self.queues:
            return NOT_FOUND
        self.queues[qid].append(self._read(caller, vp, vl))
        return OK

    def h_proxy_dequeue_shared_queue(
        self, caller: wasmtime.Caller, qid: int, rp: int, rl: int
    ) -> int:
        if qid not in self.queues:
            return NOT_FOUND
        if not self.queues[qid]:
            return EMPTY
        return self._give(caller, self.queues[qid].pop(0), rp, rl)

    def h_proxy_continue_stream(self, caller: wasmtime.Caller, stream: int) -> int:
        self.continued.add(stream)
        return OK

    def h_proxy_close_stream(self, caller: wasmtime.Caller, stream: int) -> int:
        return OK

    def h_proxy_send_local_response(
        self,
        caller: wasmtime.Caller,
        status: int,
        dp: int,
        dl: int,
        bp: int,
        bl: int,
        hp: int,
        hl: int,
        grpc: int,
    ) -> int:
        try:
            headers = decode_pairs(self._read(caller, hp, hl))
        except ValueError:
            return BAD_ARGUMENT
        body = self._read(caller, bp, bl)
        self.local = HttpMessage(headers=_text(headers), body=body, status=status)
        return OK

    def h_proxy_http_call(
        self,
        caller: wasmtime.Caller,
        up: int,
        ul: int,
        hp: int,
        hl: int,
        bp: int,
        bl: int,
        tp: int,
        tl: int,
        timeout: int,
        rt: int,
    ) -> int:
        upstream = self._read(caller, up, ul).decode("utf-8", "replace")
        try:
            headers = _text(decode_pairs(self._read(caller, hp, hl)))
        except ValueError:
            return BAD_ARGUMENT
        names = {k for k, _ in headers}
        if not {":method", ":path", ":authority"} <= names:
            return BAD_ARGUMENT
        token = self.next_token
        self.next_token += 1
        self.pending_calls.append((token, upstream, headers, self._read(caller, bp, bl)))
        self._u32(caller, rt, token)
        return OK

    def h_proxy_set_effective_context(self, caller: wasmtime.Caller, ctx: int) -> int:
        return OK if ctx in (ROOT_ID, STREAM_ID) else BAD_ARGUMENT

    def h_proxy_done(self, caller: wasmtime.Caller) -> int:
        return OK

    def h_proxy_define_metric(
        self, caller: wasmtime.Caller, kind: int, np: int, nl: int, rid: int
    ) -> int:
        name = self._read(caller, np, nl).decode("utf-8", "replace")
        for mid, (n, _k, _v) in self.metrics.items():
            if n == name:
                self._u32(caller, rid, mid)
                return OK
        mid = len(self.metrics) + 1
        self.metrics[mid] = [name, kind, 0]
        self._u32(caller, rid, mid)
        return OK

    def h_proxy_increment_metric(self, caller: wasmtime.Caller, mid: int, offset: int) -> int:
        if mid not in self.metrics:
            return NOT_FOUND
        self.metrics[mid][2] += offset
        return OK

    def h_proxy_record_metric(self, caller: wasmtime.Caller, mid: int, value: int) -> int:
        if mid not in self.metrics:
            return NOT_FOUND
        self.metrics[mid][2] = value & 0xFFFFFFFFFFFFFFFF
        return OK

    def h_proxy_get_metric(self, caller: wasmtime.Caller, mid: int, ret: int) -> int:
        if mid not in self.metrics:
            return NOT_FOUND
        self._write(caller, ret, struct.pack("<Q", self.metrics[mid][2] & 0xFFFFFFFFFFFFFFFF))
        return OK

    # ----- WASI: logs, clock, random; everything else answers "no" -----

    def wasi_fd_write(self, caller: wasmtime.Caller, fd: int, iovs: int, n: int, ret: int) -> int:
        data = b""
        for i in range(n):
            p, ln = struct.unpack("<II", self._read(caller, iovs + 8 * i, 8))
            data += self._read(caller, p, ln)
        for line in data.decode("utf-8", "replace").splitlines():
            self.logs.append(("info" if fd == 1 else "error", line))
        self._u32(caller, ret, len(data))
        return 0

    def wasi_proc_exit(self, caller: wasmtime.Caller, code: int) -> None:
        raise PluginTrap(f"proc_exit({code})")

    def wasi_clock_time_get(
        self, caller: wasmtime.Caller, clock: int, precision: int, ret: int
    ) -> int:
        self._write(caller, ret, struct.pack("<Q", time.time_ns()))
        return 0

    def wasi_random_get(self, caller: wasmtime.Caller, ptr: int, n: int) -> int:
        import os

        self._write(caller, ptr, os.urandom(min(n, 65536)))
        return 0

    def wasi_fd_prestat_get(self, caller: wasmtime.Caller, fd: int, ret: int) -> int:
        return 8  # EBADF: no preopened directories

    def wasi_environ_sizes_get(self, caller: wasmtime.Caller, a: int, b: int) -> int:
        self._u32(caller, a, 0)
        self._u32(caller, b, 0)
        return 0

    wasi_args_sizes_get = wasi_environ_sizes_get


def _trap_text(e: Exception) -> str:
    """The cause (``wasm trap: ...``) first, then the wasm backtrace, which names the
    guest functions when the module keeps its name section."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    cause = next((ln for ln in reversed(lines) if "trap" in ln or "error" in ln), lines[-1:])
    frames = [ln for ln in lines if ln[:1].isdigit() and ":" in ln][:8]
    return " | ".join([str(cause), *frames]) if lines else "trap"


class _BadMemory(Exception):
    pass


def _text(pairs: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("utf-8", "replace"), v.decode("utf-8", "replace")) for k, v in pairs]
