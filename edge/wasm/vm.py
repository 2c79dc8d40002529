"""One proxy-wasm VM: a wasmtime Store and instance of one plugin module, with the
``env`` host functions and WASI bound to it, and the context bookkeeping
(root contexts per plugin configuration, HTTP contexts per request).

A VM is never shared between threads. Every call into the guest runs under the CPU
deadline set in ``FastStore`` and raises ``GuestTrap`` on a trap, an interrupt, an
allocation failure inside a hostcall or ``proc_exit``; the owner (``runtime.py``)
then discards the VM. Hostcall bodies live in ``hostcalls.py`` and ``wasi.py``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import wasmtime

from edge.context import Request
from edge.wasm import driver, hostcalls, wasi
from edge.wasm.abi import AbiError, Action, Status, pack_u32
from edge.wasm.context import CallResult, PendingCall, StreamState
from edge.wasm.driver import Driver
from edge.wasm.engine import ModuleError, deadline_ticks, engine
from edge.wasm.fastcall import (
    I32,
    FastStore,
    GuestFunc,
    GuestMemory,
    GuestTrap,
    define_host,
)
from edge.wasm.hostcalls import MAX_KEY_BYTES
from edge.wasm.hostcalls import PY_LEVELS as _PY_LEVELS

log = logging.getLogger("edge.wasm")

# why ``GuestMemory.give`` could not hand a result over, by its code
_GIVE_ERRORS = (
    "",
    "result pointer out of bounds",
    "guest allocator returned 0",
    "write out of bounds",  # a lying allocator
)

# a guest export as the VM calls it (``GuestFunc.bind``), or a wrapper around one
GuestCall = Callable[..., Any]

ABI_EXPORTS = ("proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0")
WASI_MODULES = ("wasi_snapshot_preview1", "wasi_unstable")
LOG_RING = 64
# start functions and root-context start run once per VM and may initialise a whole
# language runtime (Go clears its heap: ~100 ms here); they get this budget instead of
# cpu_ms_per_call, still bounded so a looping _initialize cannot hold the worker
START_CPU_MS = 2000.0
# HTTP contexts alive at once in one VM (requests in flight on one worker)
MAX_STREAMS: Final = 10_000

# guest exports the host calls: name -> (params, results); all optional
CALLBACKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "proxy_on_context_create": ((I32, I32), ()),
    "proxy_on_vm_start": ((I32, I32), (I32,)),
    "proxy_on_configure": ((I32, I32), (I32,)),
    "proxy_on_tick": ((I32,), ()),
    "proxy_on_queue_ready": ((I32, I32), ()),
    "proxy_on_request_headers": ((I32, I32, I32), (I32,)),
    "proxy_on_request_body": ((I32, I32, I32), (I32,)),
    "proxy_on_request_trailers": ((I32, I32), (I32,)),
    "proxy_on_response_headers": ((I32, I32, I32), (I32,)),
    "proxy_on_response_body": ((I32, I32, I32), (I32,)),
    "proxy_on_response_trailers": ((I32, I32), (I32,)),
    "proxy_on_http_call_response": ((I32, I32, I32, I32, I32), ()),
    "proxy_on_done": ((I32,), (I32,)),
    "proxy_on_log": ((I32,), ()),
    "proxy_on_delete": ((I32,), ()),
}
ALLOCATORS = ("proxy_on_memory_allocate", "malloc")


@dataclass
class VmSpec:
    """Everything a VM needs to know about its plugin; built once per bundle."""

    plugin: str
    tenant: str
    vm_config: bytes = b""
    memory_bytes: int = 64 << 20
    cpu_ms: float = 10.0
    # None: every host function allowed; else the proxy_* names that are
    allowed: frozenset[str] | None = None
    http_call_upstreams: frozenset[str] = frozenset()
    node_id: str = ""
    vm_id: str = ""
    extra_properties: dict[str, Any] = field(default_factory=dict)


class VmStartError(Exception):
    """The guest refused to start (on_vm_start/on_configure false, or start trapped)."""

    def __init__(self, message: str, logs: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.logs = logs


class RootState:
    __slots__ = ("id", "name", "conf", "tick_ms", "next_tick", "root_only")

    def __init__(self, rid: int, name: str, conf: bytes) -> None:
        self.id = rid
        self.name = name
        self.conf = conf
        self.tick_ms = 0
        self.next_tick = 0.0
        self.root_only = False


class PluginVM:
    def __init__(self, spec: VmSpec, module: wasmtime.Module) -> None:
        self.spec = spec
        self.dead = False
        self.logs: deque[str] = deque(maxlen=LOG_RING)
        self.capture_logs = True  # during start/configure, for config error messages
        self.roots: dict[int, RootState] = {}
        self.streams: dict[int, StreamState] = {}
        # the stream a ``step`` is starting, in ``streams`` only once it outlives that
        # step: most end in it (``driver.END``), and then were never in the dict
        self.fresh: StreamState | None = None
        self.next_id = 1
        self.current = 0  # the effective context id
        self.cur_stream: StreamState | None = None
        self.cur_root: RootState | None = None
        self.call_result: CallResult | None = None
        self.pending_root_calls: list[PendingCall] = []
        # set by proxy_http_call, so requests without calls skip collecting them
        self.calls_waiting = False
        self.next_token = 1
        self.queue_ready: list[tuple[int, int]] = []
        self.denied_logged: set[str] = set()
        self.status: tuple[int, bytes] = (0, b"")
        self.calls = 0
        self._fd_partial: dict[int, bytes] = {}

        eng = engine()
        store = wasmtime.Store(eng)
        store.set_limits(memory_size=spec.memory_bytes)
        # the first deadline comes at half the budget (see FastStore)
        self.call_ticks = deadline_ticks(spec.cpu_ms / 2)
        self.fs = FastStore(store, deadline_ticks(START_CPU_MS / 2), START_CPU_MS)
        self.store = store
        linker = wasmtime.Linker(eng)
        self._define_imports(linker, module)
        self.gm: GuestMemory | None = None
        # ``gm.give``, bound once: a method looked up per call costs more than the copy
        self._give: Callable[[int, int, bytes, Any], int] | None = None
        self.fs.set_deadline()
        try:
            self.instance = linker.instantiate(store, module)
        except wasmtime.Trap as trap:
            raise GuestTrap("trap", str(trap).splitlines()[0]) from None
        except wasmtime.WasmtimeError as e:
            pending, self.fs.pending = self.fs.pending, None
            if pending is not None:
                raise GuestTrap(
                    "proc_exit" if "proc_exit" in str(pending) else "host", str(pending)
                ) from None
            msg = str(e).splitlines()[0] if str(e) else "instantiation failed"
            if "interrupt" in str(e):
                raise GuestTrap("interrupt", msg) from None
            raise ModuleError("file", f"module cannot be instantiated: {msg}") from None
        exports = self.instance.exports(store)
        names = {e.name for e in module.exports}
        if not any(n in names for n in ABI_EXPORTS):
            raise ModuleError(
                "file", "module exports no proxy_abi_version_0_2_1 or _0_2_0 (not proxy-wasm 0.2)"
            )
        mem = exports.get("memory") if "memory" in names else None
        if not isinstance(mem, wasmtime.Memory):
            raise ModuleError("file", "module exports no linear memory named 'memory'")
        self.gm = self.fs.memory = GuestMemory(self.fs, mem)
        self._give = self.gm.give
        self.batched = False
        self.driver: Driver | None = None
        self._plain: tuple[GuestCall | None, ...] = ()
        self.on_request_body: GuestCall | None = None
        self.on_response_headers: GuestCall | None = None
        self.on_response_body: GuestCall | None = None
        self.cb: dict[str, GuestCall | None] = Callbacks(self._callbacks_changed)
        for name, (params, results) in CALLBACKS.items():
            self.cb[name] = self._export(exports, names, name, params, results)
        alloc = None
        for name in ALLOCATORS:
            alloc = self._export(exports, names, name, (I32,), (I32,))
            if alloc is not None:
                break
        if alloc is None:
            raise ModuleError("file", "module exports neither proxy_on_memory_allocate nor malloc")
        self.alloc = self.fs.alloc = alloc
        batched = {n: exports[n] for n in driver.CALLED if self.cb[n] is not None}
        self.held = False  # ``hold``, for ``_step_plain``
        if batched:
            self.driver = Driver(eng, self.fs, batched, self._enter)  # type: ignore[arg-type]
            self._plain = tuple(self.cb[n] for n in driver.CALLED)
            self._callbacks_changed()
        # start functions, as proxy-wasm-cpp-host WasmBase::startVm
        if "_initialize" in names:
            self._export(exports, names, "_initialize", (), ())()  # type: ignore[misc]
            main = self._export_any(exports, "main") if "main" in names else None
            if main is not None:
                main[0](*([0] * main[1]))
            elif "__main_void" in names:
                f = self._export(exports, names, "__main_void", (), (I32,))
                if f is not None:
                    f()
        elif "_start" in names:
            self._export(exports, names, "_start", (), ())()  # type: ignore[misc]
        self.fs.set_budget_ms(spec.cpu_ms, self.call_ticks)

    # -- loading ---------------------------------------------------------------------

    def _export(
        self,
        exports: Any,
        names: set[str],
        name: str,
        params: tuple[str, ...],
        results: tuple[str, ...],
    ) -> GuestCall | None:
        if name not in names:
            return None
        f = exports[name]
        if not isinstance(f, wasmtime.Func):
            raise ModuleError("file", f"export {name} is not a function")
        try:
            return GuestFunc(self.fs, f, name, params, results).bind()
        except TypeError as e:
            raise ModuleError("file", str(e)) from None

    def _export_any(self, exports: Any, name: str) -> tuple[Any, int] | None:
        f = exports[name]
        if not isinstance(f, wasmtime.Func):
            return None
        ty = f.type(self.store)
        params = tuple(str(p) for p in ty.params)
        results = tuple(str(r) for r in ty.results)
        if params not in ((), ("i32", "i32")) or results not in ((), ("i32",)):
            return None
        return GuestFunc(self.fs, f, name, params, results), len(params)

    def _define_imports(self, linker: wasmtime.Linker, module: wasmtime.Module) -> None:
        table = hostcalls.table(self)
        wasi_table = wasi.table(self)
        seen: set[tuple[str, str]] = set()
        unknown: list[str] = []
        for imp in module.imports:
            key = (imp.module, imp.name or "")
            if key in seen:
                continue  # Go imports fd_write twice; one definition serves both
            seen.add(key)
            ty = imp.type
            if not isinstance(ty, wasmtime.FuncType):
                unknown.append(f"{imp.module}.{imp.name} (a {type(ty).__name__}, not a function)")
                continue
            params = tuple(str(p) for p in ty.params)
            results = tuple(str(r) for r in ty.results)
            entry: tuple[tuple[str, ...], tuple[str, ...], Callable[..., Any]] | None = None
            if imp.module == "env":
                entry = table.get(key[1])
                if entry is None and key[1].startswith("proxy_"):
                    entry = _stub(params, results, Status.UNIMPLEMENTED)
            elif imp.module in WASI_MODULES:
                entry = wasi_table.get(key[1]) or _stub(params, results, 52)  # ENOSYS
            if entry is None:
                unknown.append(f"{imp.module}.{imp.name}")
                continue
            if (entry[0], entry[1]) != (params, results):
                unknown.append(
                    f"{imp.module}.{imp.name} with type ({', '.join(params)}) -> "
                    f"({', '.join(results)}); the host defines ({', '.join(entry[0])}) -> "
                    f"({', '.join(entry[1])})"
                )
                continue
            if not all(p in ("i32", "i64") for p in params) or not all(
                r in ("i32", "i64") for r in results
            ):
                unknown.append(f"{imp.module}.{imp.name} (non-integer signature)")
                continue
            fn = entry[2]
            # a ``_Guarded`` entry: its bare function, whose AbiError the crossing answers
            gives = getattr(fn, "gives", None)
            on_field = getattr(fn, "on_field", None)
            bare = gives or on_field or getattr(fn, "raw", None)
            define_host(
                linker,
                self.fs,
                imp.module,
                key[1],
                params,
                results,
                bare or fn,
                AbiError if bare is not None else None,
                MAX_KEY_BYTES if on_field is not None else 0,
                gives=gives is not None,
            )
        if unknown:
            raise ModuleError(
                "file", "module imports host functions edge does not provide: " + ", ".join(unknown)
            )

    # -- memory helpers used by hostcalls --------------------------------------------

    def memory(self) -> GuestMemory:
        gm = self.gm
        if gm is None:
            # a start section calling the host before exports are bound
            raise AbiError(Status.INVALID_MEMORY_ACCESS, "memory not available yet")
        return gm

    def mem(self) -> memoryview:
        return self.memory().view()

    def read(self, ptr: int, size: int) -> bytes:
        data = self.memory().read(ptr, size)
        if data is None:
            raise AbiError(Status.INVALID_MEMORY_ACCESS, "read out of bounds")
        return data

    def write(self, ptr: int, data: bytes) -> None:
        if not self.memory().write(ptr, data):
            raise AbiError(Status.INVALID_MEMORY_ACCESS, "write out of bounds")

    def write_u32(self, ptr: int, value: int) -> None:
        self.write(ptr, pack_u32(value))

    def check_out(self, *ptrs: int) -> None:
        n = len(self.mem())
        for p in ptrs:
            if p + 4 > n:
                raise AbiError(Status.INVALID_MEMORY_ACCESS, "result pointer out of bounds")

    def give(self, ret_ptr: int, ret_len: int, data: bytes) -> int:
        """Copy ``data`` into guest-allocated memory; write its address and length."""
        give = self._give
        if give is None:
            raise AbiError(Status.INVALID_MEMORY_ACCESS, "memory not available yet")
        r = give(ret_ptr, ret_len, data, self.alloc)
        if r:
            raise AbiError(Status.INVALID_MEMORY_ACCESS, _GIVE_ERRORS[r])
        return Status.OK

    # -- logging ---------------------------------------------------------------------

    def guest_log(self, level: int, text: str) -> None:
        py = _PY_LEVELS.get(level, logging.INFO)
        if self.capture_logs:
            self.logs.append(f"{_LEVEL_NAMES.get(level, 'info')}: {text}")
        if log.isEnabledFor(py):
            log.log(py, "wasm[%s] %s", self.spec.plugin, text)

    # -- contexts and calls ----------------------------------------------------------

    def find_stream(self, ctx_id: int) -> StreamState | None:
        """The live HTTP context ``ctx_id``, if there is one."""
        st = self.streams.get(ctx_id)
        if st is None:
            f = self.fresh
            if f is not None and f.id == ctx_id:
                return f
        return st

    def _enter(self, ctx_id: int) -> None:
        self.current = ctx_id
        st = self.find_stream(ctx_id)
        self.cur_stream = st
        self.cur_root = self.roots.get(st.root_id if st is not None else ctx_id)

    def _enter_stream(self, st: StreamState) -> None:
        self.current = st.id
        self.cur_stream = st
        self.cur_root = st.root

    def set_effective(self, ctx_id: int) -> bool:
        if self.find_stream(ctx_id) is None and ctx_id not in self.roots:
            return False
        self._enter(ctx_id)
        if self.driver is not None:
            # a batched call must restore the context before its next callback
            self.driver.switched()
        return True

    def create_root(self, name: str, conf: bytes) -> RootState:
        rid = self.next_id
        self.next_id += 1
        root = RootState(rid, name, conf)
        self.roots[rid] = root
        self._enter(rid)
        self.capture_logs = True
        self.fs.set_budget_ms(START_CPU_MS, deadline_ticks(START_CPU_MS / 2))
        try:
            f = self.cb["proxy_on_context_create"]
            if f is not None:
                f(rid, 0)
            f = self.cb["proxy_on_vm_start"]
            if f is not None and not f(rid, len(self.spec.vm_config)):
                del self.roots[rid]
                raise VmStartError("proxy_on_vm_start returned false", list(self.logs))
            f = self.cb["proxy_on_configure"]
            if f is not None and not f(rid, len(conf)):
                del self.roots[rid]
                raise VmStartError("proxy_on_configure returned false", list(self.logs))
        finally:
            self.fs.set_budget_ms(self.spec.cpu_ms, self.call_ticks)
            self.capture_logs = False
        return root

    def _batched(self) -> bool:
        """True while the callbacks are the VM's own (the plugin toolkit wraps them
        to time each one; then every callback is called on its own)."""
        return self.batched

    def _callbacks_changed(self) -> None:
        # kept as a flag: the comparison runs when ``cb`` changes, not per request
        cb = self.cb
        self.batched = self.driver is not None and self._plain == tuple(
            cb.get(n) for n in driver.CALLED
        )
        # the phases' callbacks as fields: ``cb`` is a dict subclass, slower to index
        self.on_request_body = cb.get("proxy_on_request_body")
        self.on_response_headers = cb.get("proxy_on_response_headers")
        self.on_response_body = cb.get("proxy_on_response_body")

    def new_state(self, root: RootState, req: Request) -> StreamState:
        """A new HTTP context's state, ``fresh`` until its first ``step``."""
        if self.fresh is not None:
            self._register(self.fresh)
        streams = self.streams
        if len(streams) >= MAX_STREAMS:
            # a stream whose log phase never ran: forget the oldest rather than grow
            streams.pop(next(iter(streams)))
        sid = self.next_id
        self.next_id = sid + 1
        st = StreamState(sid, root, req, self)
        self.fresh = st
        self.current = sid
        self.cur_stream = st
        self.cur_root = root
        return st

    def new_stream(self, root: RootState, req: Request) -> StreamState:
        """A new HTTP context (``proxy_on_context_create``)."""
        st = self.new_state(root, req)
        self.step(st, driver.CREATE, 0, 0)
        return st

    def start_stream(
        self, root: RootState, req: Request, num_headers: int, eos: int, end: int = 0
    ) -> tuple[StreamState, int]:
        """A new HTTP context, then ``proxy_on_request_headers``; with ``end``
        (``driver.END``) the end of the stream too when they answer Continue and hold
        nothing open (then ``driver.ENDED``). See ``step``."""
        st = self.new_state(root, req)
        return st, self.step(st, driver.CREATE | driver.REQUEST | end, num_headers, eos)

    def step(self, st: StreamState, what: int, num_headers: int, eos: int) -> int:
        """The callbacks ``what`` asks for (``edge.wasm.driver``), in one call into
        the guest when batched: the headers callback's action, or ``driver.ENDED`` when
        the stream ended (it is then forgotten). A ``GuestTrap`` names the callback."""
        if not self.batched:
            try:
                r = self._step_plain(st, what, num_headers, eos)
            except GuestTrap:
                self._register(st)
                raise
        else:
            self.current = st.id
            self.cur_stream = st
            self.cur_root = st.root
            d = self.driver
            assert d is not None
            try:
                r = d.step(st.id, st.root_id, num_headers, eos, what) or 0
            except GuestTrap as e:
                e.callback = _STAGES[d.stage()]
                self._register(st)
                raise
        if r == driver.ENDED:
            self.ended(st)
        elif st is self.fresh:
            self._register(st)
        return r

    def _register(self, st: StreamState) -> None:
        """``st`` outlived its first step: findable by id from now on."""
        self.streams[st.id] = st
        if st is self.fresh:
            self.fresh = None

    def _step_plain(self, st: StreamState, what: int, num_headers: int, eos: int) -> int:
        """``step`` one callback at a time (the plugin toolkit's timed callbacks)."""
        self.held = False
        r = 0
        if what & driver.CREATE:
            self._call_plain(st, "proxy_on_context_create", st.root_id)
        if what & driver.REQUEST:
            r = self._call_plain(st, "proxy_on_request_headers", num_headers, eos)
        elif what & driver.RESPONSE:
            r = self._call_plain(st, "proxy_on_response_headers", num_headers, eos)
        if not what & driver.END or r or self.held:
            return 1 if r else 0
        for name in driver.FINISH:
            self._call_plain(st, name)
        return driver.ENDED

    def _call_plain(self, st: StreamState, name: str, *args: int) -> int:
        f = self.cb[name]
        if f is None:
            return 0
        self._enter_stream(st)
        try:
            r = f(st.id, *args)
        except GuestTrap as e:
            e.callback = name
            raise
        return r if r is not None and name.endswith("_headers") else 0

    def hold(self) -> None:
        """The running callback made its stream outlive it (a local response, an
        http_call): a ``step`` asked to end the stream does not."""
        self.held = True
        if self.driver is not None:
            self.driver.hold()

    def call_stream(self, st: StreamState, name: str, *args: int) -> int:
        """Call an HTTP callback; a missing export means Continue."""
        f = self.cb[name]
        if f is None:
            return Action.CONTINUE
        self._enter_stream(st)
        r = f(st.id, *args)
        return r if r is not None else Action.CONTINUE

    def call_root(self, root: RootState, name: str, *args: int) -> int | None:
        f = self.cb[name]
        if f is None:
            return None
        self._enter(root.id)
        return f(root.id, *args)

    def http_call_response(self, root_id: int, res: CallResult, token: int) -> None:
        # proxy_get_status, as Envoy's onHttpCallSuccess/Failure set it: OK, or
        # BROKEN_CONNECTION "reset" (the HTTP status is the map's :status)
        self.status = (Status.BROKEN_CONNECTION, b"reset") if res.failed else (Status.OK, b"")
        f = self.cb["proxy_on_http_call_response"]
        if f is None:
            return
        self.call_result = res
        nh = 0 if res.failed else len(res.header_map().pairs())
        self._enter(root_id)
        try:
            f(root_id, token, nh, len(res.body), 0)
        finally:
            self.call_result = None

    def finish_stream(self, st: StreamState) -> None:
        """on_done -> on_log -> on_delete, then forget the context."""
        if st.done:
            return
        st.done = True  # once, even if a callback below finds its way back here
        try:
            self.step(st, driver.END, 0, 0)
        finally:
            self.ended(st)

    def ended(self, st: StreamState) -> None:
        st.done = True
        if st is self.fresh:
            self.fresh = None
        else:
            streams = self.streams
            if st.id in streams:  # ``dict.pop`` with a default is a method call in mypyc
                del streams[st.id]
        if self.current == st.id:
            self.cur_stream = None

    def new_token(self) -> int:
        t = self.next_token
        self.next_token += 1
        return t


class Callbacks(dict[str, GuestCall | None]):
    """The VM's callback table: a dict whose item assignment (the only way it is
    changed: the plugin toolkit wraps callbacks to time them) tells the VM, which
    then re-decides whether the batching driver may be used."""

    __slots__ = ("_changed",)

    def __init__(self, changed: Callable[[], None]) -> None:
        super().__init__()
        self._changed = changed

    def __setitem__(self, key: str, value: GuestCall | None) -> None:
        super().__setitem__(key, value)
        self._changed()


# the callback a driver stage is in
_STAGES: Final = {
    0: "",
    driver.CONTEXT_CREATE: "proxy_on_context_create",
    driver.REQUEST_HEADERS: "proxy_on_request_headers",
    driver.RESPONSE_HEADERS: "proxy_on_response_headers",
    driver.DONE: "proxy_on_done",
    driver.LOG: "proxy_on_log",
    driver.DELETE: "proxy_on_delete",
}


def _stub(
    params: tuple[str, ...], results: tuple[str, ...], value: int
) -> tuple[tuple[str, ...], tuple[str, ...], Callable[..., Any]]:
    def fn(*args: int) -> int | None:
        return int(value) if results else None

    return params, results, fn


_LEVEL_NAMES = {0: "trace", 1: "debug", 2: "info", 3: "warn", 4: "error", 5: "critical"}
