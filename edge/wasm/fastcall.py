"""The fast path into and out of wasmtime, over wasmtime-py 50.0.1's own C bindings.

Why this module exists: the stock ``Func.__call__`` looks up the function type,
converts every argument to a ``Val`` and allocates result arrays on every call
(about 18 µs here), and a host function made with ``Func(...)`` goes through a
generic trampoline (about 8 µs). The C API's *unchecked* entry points take a flat
array of ``wasmtime_val_raw_t`` instead; with the array built once per export the
cost falls to about 1 µs per call and under 0.5 µs per host callback.

Unchecked means wasmtime trusts us about the types, so every export's signature is
checked once here, at load (``GuestFunc``), and every host function is defined with
an exact ``FuncType`` (``define_host``). Everything wasmtime-specific and unsafe stays
in this module; callers see ``GuestFunc``, ``GuestMemory``, ``define_host`` and
``GuestTrap``.

The bindings are private API of wasmtime-py, so the package version is pinned
(``WASMTIME_VERSION``) and checked at import.

Where ``edge native build`` has built ``edge/wasm/_wasmcall.c``, the two crossings
themselves (a guest call, a host function) run in C instead of ctypes (about 0.1 µs
each instead of about 1); everything around them (signature checks, traps, budgets)
is this module either way.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Sequence
from ctypes import byref
from typing import TYPE_CHECKING, Any

import wasmtime
from wasmtime import _bindings as ffi

try:
    from edge.wasm import _wasmcall
except ImportError:  # not built, or EDGE_NATIVE=0: the ctypes crossings below
    _wasmcall = None

WASMTIME_VERSION = "50.0.1"

_pkg_version = getattr(wasmtime, "__version__", None)
if _pkg_version is None:  # wasmtime-py does not always export __version__
    from importlib.metadata import version as _v

    _pkg_version = _v("wasmtime")
if _pkg_version != WASMTIME_VERSION:  # pragma: no cover - guarded by the pin
    raise ImportError(
        f"edge.wasm.fastcall is written against wasmtime {WASMTIME_VERSION}, found {_pkg_version}"
    )

I32 = "i32"
I64 = "i64"
_KINDS = {I32: wasmtime.ValType.i32(), I64: wasmtime.ValType.i64()}


def _raw(name: str, restype: Any) -> Any:
    """A fresh, untyped handle on a C function (``dll[name]`` is not cached, so the
    typed one wasmtime-py uses is untouched). With no ``argtypes`` ctypes skips its
    per-argument conversion, which is most of the cost of a typed call (~2 µs);
    every caller passes exactly-typed ctypes objects instead."""
    fn = ffi.dll[name]
    fn.restype = restype
    return fn


def _held(name: str, restype: Any, *argtypes: Any) -> Any:
    """A C function called *without* releasing the GIL (``PYFUNCTYPE``), for tiny,
    non-blocking getters/setters: releasing and re-taking the GIL costs more than
    they do, and inside a host callback it invites a hand-off to another thread."""
    addr = ctypes.cast(getattr(ffi.dll, name), ctypes.c_void_p).value
    return ctypes.PYFUNCTYPE(restype, *argtypes)(addr)


# guest calls release the GIL (plain ``dll[...]``): where the epoch ticks come from a
# thread (``edge.wasm.epoch``), it must run while a guest spins
_call_unchecked = _raw("wasmtime_func_call_unchecked", ctypes.c_void_p)
_mem_data = _held("wasmtime_memory_data", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
# checked on the first memory access of every hostcall: untyped (callers pass the
# store context as c_void_p and a byref of the memory), a third cheaper
_mem_size = _held("wasmtime_memory_data_size", ctypes.c_size_t)
_deadline_callback = _raw("wasmtime_store_epoch_deadline_callback", None)
_define_unchecked = _raw("wasmtime_linker_define_func_unchecked", ctypes.c_void_p)
_trap_new = ffi._wasmtime_trap_new
_TrapPtr = ctypes.POINTER(ffi.wasm_trap_t)
# wasmtime_val_raw_t is a 16-byte union; viewing the args/results array as int64
# makes slot i live at index 2*i and reads return plain ints (no union objects)
_SLOT = 2
_RawArgs = ctypes.POINTER(ctypes.c_int64)
_HostCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, _RawArgs, ctypes.c_size_t
)
_thread_time = time.thread_time_ns
_monotonic = time.monotonic_ns
_NO_FINALIZER = ctypes.cast(None, ctypes.CFUNCTYPE(None, ctypes.c_void_p))


def _addr(fn: Any) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value or 0


if TYPE_CHECKING or _wasmcall is None:

    class _StoreBase:
        """The fields the C crossings share with FastStore (``_wasmcall.StoreBase``)."""

        __slots__ = (
            "depth",
            "seq",
            "ran",
            "pending",
            "context",
            "busy_ns",
            "budget_ns",
            "seen_seq",
            "cpu_mark",
            "wall_mark",
            "over_cpu",
            "over_wall",
            "memory",
            "alloc",
        )
        depth: int
        seq: int
        ran: int
        pending: BaseException | None
        context: int
        busy_ns: int
        budget_ns: int
        seen_seq: int
        cpu_mark: int
        wall_mark: int
        over_cpu: int
        over_wall: int
        memory: Any
        alloc: Any

else:
    _wasmcall.init(
        _addr(_call_unchecked),
        _addr(_trap_new),
        _addr(ffi.dll.wasmtime_memory_data_size),
        _addr(ffi.dll.wasmtime_memory_data),
        _addr(ffi.dll.wasmtime_error_new),
    )
    _StoreBase = _wasmcall.StoreBase


def release_gil_in_calls(flag: bool) -> None:
    """Whether guest calls release the GIL: needed while a Python thread ticks the
    epoch (edge.wasm.epoch), or a spinning guest would never be interrupted. The
    ctypes path always releases it."""
    if _wasmcall is not None:
        _wasmcall.set_release_gil(flag)


class GuestTrap(Exception):
    """A call into the guest ended abnormally.

    ``kind`` is one of: ``interrupt`` (CPU deadline), ``unreachable``,
    ``stack_overflow``, ``memory`` (out-of-bounds access), ``proc_exit``,
    ``host`` (a host function raised), ``trap`` (any other trap), ``error``.
    ``callback`` names the guest callback that trapped, where the caller needs it.
    """

    callback = ""

    def __init__(self, kind: str, message: str, cause: BaseException | None = None) -> None:
        # wasmtime's text is a backtrace then "Caused by:" and the reason: keep the
        # reason as the message (logs, config errors), the whole text as ``detail``
        lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
        short = lines[-1] if lines else kind
        super().__init__(f"{kind}: {short}")
        self.kind = kind
        self.message = short
        self.detail = message
        self.cause = cause


class ProcExit(Exception):
    """Raised by a host function (WASI ``proc_exit``) to end the guest as a trap."""

    def __init__(self, code: int) -> None:
        super().__init__(f"proc_exit({code})")
        self.code = code


_TRAP_KINDS = {
    wasmtime.TrapCode.INTERRUPT.value: "interrupt",
    wasmtime.TrapCode.UNREACHABLE.value: "unreachable",
    wasmtime.TrapCode.STACK_OVERFLOW.value: "stack_overflow",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS.value: "memory",
    wasmtime.TrapCode.OUT_OF_FUEL.value: "out_of_fuel",
}


def _byte_vec_str(vec: Any) -> str:
    try:
        # the C API's messages are NUL-terminated C strings counted in ``size``
        return ctypes.string_at(vec.data, vec.size).decode("utf-8", "replace").rstrip("\0")
    finally:
        ffi.wasm_byte_vec_delete(byref(vec))


_DeadlineCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ctypes.c_uint8),
)
# a guest preempted by the OS gets at most this many times its budget in wall time
WALL_FACTOR = 50
# the epoch ticker's period (edge.wasm.engine ticks at this rate)
TICK_NS = 2_000_000


class FastStore(_StoreBase):
    """Per-Store call state: context pointer, CPU budget, nesting depth and the
    Python exception a host function raised (re-raised as a ``GuestTrap``).

    The budget is CPU time of the calling thread, and it is enforced without any
    per-call work. Setting an epoch deadline and reading a clock on every call
    cost more than the call itself, so calls set nothing: the Store's deadline is
    always "the next tick", and wasmtime runs ``_on_deadline`` at the first epoch
    check after each tick (function entries, loop back-edges) - so at most once a
    tick, and only while guest code runs. Each outermost call bumps ``seq``; the
    first time the callback sees a call, it notes the thread's CPU clock and the
    wall clock; later ticks of the same call compare, and trap once the call used
    ``budget_ns`` of CPU (or ``WALL_FACTOR`` times that in wall time, for a thread
    the machine keeps preempting). A spinning guest therefore traps after its
    budget plus at most one tick; a call that ends before a tick is never looked at.
    The callback is C (``_wasmcall.DEADLINE``) where the native build is on: a
    ctypes callback once a tick cost about 0.4 µs per request at 20k requests/s.

    Host callbacks and their ctypes objects are kept in ``keep`` so they live as
    long as the Store that may call them.
    """

    # the budget and the deadline callback's marks are fields of the base (read in C)
    __slots__ = ("store", "ctx", "deadline_ticks", "keep", "_deadline_cb")

    def __init__(
        self, store: wasmtime.Store, deadline_ticks: int = 0, budget_ms: float = 0.0
    ) -> None:
        self.store = store
        self.ctx = ctypes.c_void_p(ctypes.cast(store._context(), ctypes.c_void_p).value)
        self.context = self.ctx.value or 0  # the same pointer, for the C crossings
        # kept for callers of the old per-call deadline API: a budget given in ticks
        self.deadline_ticks = deadline_ticks
        self.depth = 0
        self.busy_ns = 0  # time inside outermost calls, not yet in the metrics
        self.seq = 0  # outermost calls so far
        self.seen_seq = -1  # the call the deadline callback last looked at
        self.pending: BaseException | None = None
        self.keep: list[Any] = []
        self.budget_ns = int(budget_ms * 1e6) if budget_ms else deadline_ticks * TICK_NS
        self.cpu_mark = 0
        self.wall_mark = 0
        self.over_cpu = -1  # set by the deadline callback when it stops a call
        self.over_wall = 0
        # bumped whenever guest code may have run (memory may have grown since)
        self.ran = 0
        # the instance's GuestMemory once known, for field hostcalls (``define_host``)
        self.memory: GuestMemory | None = None
        # its allocator export, for hostcalls that give a result (``define_host``)
        self.alloc: Callable[[int], int] | None = None
        store_ptr = ctypes.cast(store.ptr(), ctypes.c_void_p)
        if _wasmcall is not None:
            # the callback in C, on this object's fields: no Python call per tick
            self._deadline_cb = None
            _deadline_callback(
                store_ptr, ctypes.c_void_p(_wasmcall.DEADLINE), ctypes.c_void_p(id(self)), None
            )
        else:
            self._deadline_cb = _DeadlineCallback(self._on_deadline)
            _deadline_callback(store_ptr, self._deadline_cb, None, _NO_FINALIZER)

    def _on_deadline(self, ctx: Any, data: Any, delta: Any, kind: Any) -> int:
        try:
            cpu = _thread_time()
            wall = _monotonic()
            if self.seen_seq != self.seq:
                # first look at this call: it started at most one tick ago
                self.seen_seq = self.seq
                self.cpu_mark = cpu
                self.wall_mark = wall
                used = 0
            else:
                used = cpu - self.cpu_mark
                wall -= self.wall_mark
                if not self.budget_ns or (
                    used >= self.budget_ns or wall >= self.budget_ns * WALL_FACTOR
                ):
                    self.over_cpu = used
                    self.over_wall = wall
                    msg = b"edge: wasm CPU budget exhausted"
                    return ctypes.cast(ffi.wasmtime_error_new(msg), ctypes.c_void_p).value or 0
            delta[0] = 1
            kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
            return 0
        except BaseException as exc:  # an exception must not unwind through C
            self.pending = exc
            msg = b"edge: wasm deadline callback failed"
            return ctypes.cast(ffi.wasmtime_error_new(msg), ctypes.c_void_p).value or 0

    def set_budget_ms(self, budget_ms: float, ticks: int = 0) -> None:
        self.budget_ns = int(budget_ms * 1e6)

    def trap_from(self, exc: BaseException) -> int:
        """Turn a Python exception inside a host callback into a wasm trap pointer."""
        if self.pending is None:
            self.pending = exc
        msg = str(exc).encode("utf-8", "replace")[:512] or b"host error"
        return ctypes.cast(_trap_new(msg, len(msg)), ctypes.c_void_p).value or 0

    def set_budget(self, ticks: int) -> int:
        """Set the budget in epoch ticks; returns the previous one (in ticks)."""
        prev = self.budget_ns // TICK_NS
        self.deadline_ticks = ticks
        self.budget_ns = ticks * TICK_NS
        return prev

    def set_deadline(self) -> None:
        """Start a new budget for guest code run outside ``GuestFunc`` (a start
        section run by instantiation)."""
        self.seq += 1

    def raise_error(self, err: Any, trap: Any) -> None:
        """Translate a failed call (``err`` or ``trap`` set) into ``GuestTrap``, once."""
        pending, self.pending = self.pending, None
        if self.over_cpu >= 0:
            # the deadline callback stopped the call (a host function's error comes first)
            if pending is None:
                pending = GuestTrap(
                    "interrupt",
                    f"CPU budget exhausted ({self.over_cpu / 1e6:.1f} ms CPU,"
                    f" {self.over_wall / 1e6:.1f} ms)",
                )
            self.over_cpu = -1
        if err:
            e = wasmtime.WasmtimeError._from_ptr(
                ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t))
            )
            msg = str(e)
        else:
            code = ffi.wasmtime_trap_code_t()
            has_code = ffi.wasmtime_trap_code(trap, byref(code))
            vec = ffi.wasm_byte_vec_t()
            ffi.wasm_trap_message(trap, byref(vec))
            msg = _byte_vec_str(vec)
            ffi.wasm_trap_delete(trap)
            if has_code and pending is None:
                raise GuestTrap(_TRAP_KINDS.get(code.value, "trap"), msg)
        if isinstance(pending, ProcExit):
            raise GuestTrap("proc_exit", str(pending), pending)
        if isinstance(pending, GuestTrap):
            raise pending
        if pending is not None:
            raise GuestTrap("host", f"{type(pending).__name__}: {pending}", pending)
        raise GuestTrap("error" if err else "trap", msg)


class GuestFunc:
    """A guest export, called through ``wasmtime_func_call_unchecked``.

    The signature is checked once here; each call reuses one argument buffer, a
    pre-built ``byref`` of the function and of the trap slot. Calls nest (a host
    function may call ``malloc``, once per copy into the guest): the first nesting
    level has a second buffer of its own, deeper ones allocate. Only the outermost
    call starts a new CPU budget (``FastStore.seq``), so a guest cannot extend its
    budget by re-entering. ``bind()`` gives the same call as a plain closure, which
    is what the VM uses on the request path.
    """

    __slots__ = (
        "name",
        "_fs",
        "_func",
        "_fref",
        "_buf",
        "_n",
        "_nsz",
        "_result",
        "_mask",
        "_trap",
        "_trapref",
        "_slots",
        "_cargs",
        "_nbuf",
        "_ntrap",
        "_nargs",
        "_nbusy",
        "_step",
        "_c",
    )

    def __init__(
        self,
        fs: FastStore,
        func: wasmtime.Func,
        name: str,
        params: Sequence[str],
        results: Sequence[str],
    ) -> None:
        ty = func.type(fs.store)
        got_p = [str(t) for t in ty.params]
        got_r = [str(t) for t in ty.results]
        if got_p != list(params) or got_r != list(results):
            raise TypeError(
                f"export {name!r} has type ({', '.join(got_p)}) -> ({', '.join(got_r)}), "
                f"expected ({', '.join(params)}) -> ({', '.join(results)})"
            )
        self.name = name
        self._fs = fs
        self._func = func._func
        self._fref = byref(self._func)
        self._n = max(len(params), len(results), 1)
        self._nsz = ctypes.c_size_t(self._n)
        self._buf = (ctypes.c_int64 * (_SLOT * self._n))()
        # one slice assignment fills every argument slot (an i64 write also fills
        # an i32 slot: little-endian union)
        self._slots = slice(0, _SLOT * len(params), _SLOT)
        self._result = results[0] if results else None
        # i32 results come back unsigned (wasm32 pointers and lengths are u32)
        self._mask = 0xFFFFFFFF if self._result == I32 else -1
        self._trap = _TrapPtr()
        self._trapref = byref(self._trap)
        # the C call's arguments, packed once: one tuple instead of five attribute reads
        self._cargs = (fs.ctx, self._fref, self._buf, self._nsz, self._trapref)
        # a second buffer for a call made from inside a host function (``malloc``
        # while the host copies data in): one nesting level reuses it
        self._nbuf = (ctypes.c_int64 * (_SLOT * self._n))()
        self._ntrap = _TrapPtr()
        self._nargs = (fs.ctx, self._fref, self._nbuf, self._nsz, byref(self._ntrap))
        self._nbusy = False
        self._step = self._make_step()
        # the C crossing, when built: nesting needs no second buffer there (C stack)
        self._c: Callable[..., int | None] | None = None
        if _wasmcall is not None:
            kind = 0 if self._result is None else 2 if self._result == I64 else 1
            self._c = _wasmcall.Guest(
                fs, ctypes.addressof(self._func), len(params), kind, self._fail_c
            )

    def _fail_c(self, err: int, trap: int) -> None:
        """The C crossing's failed call (``err`` or ``trap`` set, or a host function
        left an exception in ``pending``): raise its GuestTrap."""
        if err or trap:
            self._fs.raise_error(err or None, ctypes.cast(trap, _TrapPtr) if trap else None)
        _raise_pending(self._fs)

    def _make_step(self) -> Callable[[], int | None]:
        """The outermost call with its arguments in the buffer: one step shared by
        ``__call__`` and the closures of ``bind``."""
        fs = self._fs
        buf = self._buf
        mask = self._mask
        fail = self._raise
        call = _call_unchecked
        has_result = self._result is not None

        def run() -> int | None:
            fs.depth = 1
            fs.seq += 1
            t0 = time.perf_counter_ns()
            try:
                err = call(*self._cargs)
            finally:
                fs.depth = 0
                fs.ran += 1
                fs.busy_ns += time.perf_counter_ns() - t0
            if err or self._trap:
                fail(err)
            if fs.pending is not None:
                _raise_pending(fs)
            return buf[0] & mask if has_result else None

        return run

    def _new_trap_slot(self) -> None:
        # the failed slot now holds a trap that raise_error frees
        self._trap = _TrapPtr()
        self._trapref = byref(self._trap)
        self._cargs = (self._fs.ctx, self._fref, self._buf, self._nsz, self._trapref)

    def _raise(self, err: Any) -> None:
        """The call failed (``err``, or a trap in the trap slot): raise its GuestTrap."""
        trap = self._trap
        if trap:
            self._new_trap_slot()
        self._fs.raise_error(err, trap if trap else None)

    def bind(self) -> Callable[..., int | None]:
        """This function as a plain closure with one parameter per wasm parameter:
        what ``__call__`` does, without the method dispatch, the ``*args`` tuple and
        the slice assignment (a quarter of a call's host cost). The VM calls guest
        callbacks through these. With the C crossing, that object itself."""
        if self._c is not None:
            return self._c
        fs = self._fs
        buf = self._buf
        nested = self._nested
        run = self._step
        n = (self._slots.stop or 0) // _SLOT

        if n == 1:

            def f1(a: int) -> int | None:
                if fs.depth:
                    return nested((a,))
                buf[0] = a
                return run()

            return f1
        if n == 2:

            def f2(a: int, b: int) -> int | None:
                if fs.depth:
                    return nested((a, b))
                buf[0] = a
                buf[2] = b
                return run()

            return f2
        if n == 3:

            def f3(a: int, b: int, c: int) -> int | None:
                if fs.depth:
                    return nested((a, b, c))
                buf[0] = a
                buf[2] = b
                buf[4] = c
                return run()

            return f3
        if n == 4:

            def f4(a: int, b: int, c: int, d: int) -> int | None:
                if fs.depth:
                    return nested((a, b, c, d))
                buf[0] = a
                buf[2] = b
                buf[4] = c
                buf[6] = d
                return run()

            return f4
        return self.__call__

    def __call__(self, *args: int) -> int | None:
        if self._c is not None:
            return self._c(*args)
        if self._fs.depth:
            return self._nested(args)
        self._buf[self._slots] = args
        return self._step()

    def _nested(self, args: tuple[int, ...]) -> int | None:
        """A re-entrant call from a host function: the outer buffer may be in use."""
        fs = self._fs
        if self._nbusy:
            # deeper still: buffers of its own
            buf = (ctypes.c_int64 * (_SLOT * self._n))()
            trap = _TrapPtr()
            cargs: tuple[Any, ...] = (fs.ctx, self._fref, buf, self._nsz, byref(trap))
        else:
            buf = self._nbuf
            trap = self._ntrap
            cargs = self._nargs
        buf[self._slots] = args
        busy = self._nbusy
        self._nbusy = True
        fs.depth += 1
        try:
            err = _call_unchecked(*cargs)
        finally:
            fs.depth -= 1
            fs.ran += 1
            self._nbusy = busy
        if err or trap:
            if trap and not busy:
                # the shared slot now holds a trap that raise_error frees
                self._ntrap = _TrapPtr()
                self._nargs = (fs.ctx, self._fref, self._nbuf, self._nsz, byref(self._ntrap))
            fs.raise_error(err, trap if trap else None)
        if fs.pending is not None:
            pending, fs.pending = fs.pending, None
            raise GuestTrap("host", str(pending), pending)
        if self._result is None:
            return None
        return buf[0] & self._mask


def _raise_pending(fs: FastStore) -> None:
    """A host function failed but the guest swallowed the trap: still a failure."""
    pending, fs.pending = fs.pending, None
    raise GuestTrap("host", str(pending), pending)


class _NeverRaised(Exception):
    """Placeholder for ``define_host(soft=None)``: an ``except`` that never matches."""


def field_hostcall(
    fs: FastStore, on_field: Callable[[int, Any], int | None], limit: int
) -> Callable[..., int | None]:
    """A field hostcall's five arguments as ``on_field(map_type, field)`` (``define_host``'s
    ``field_limit`` without the C crossing)."""

    def fn(map_type: int, kp: int, kl: int, vp: int, vl: int) -> int | None:
        mem = fs.memory
        return on_field(map_type, mem.field(kp, kl, vp, vl, limit) if mem is not None else 2)

    return fn


# a gives hostcall's answer when its result cannot be given (the C crossing's GIVE_FAILED)
GIVE_FAILED = 6  # Status.INVALID_MEMORY_ACCESS


def giving_hostcall(fs: FastStore, fn: Callable[..., Any]) -> Callable[..., int | None]:
    """``fn`` as a hostcall whose last two parameters are where its bytes go
    (``define_host``'s ``gives`` without the C crossing)."""

    def gives(*args: int) -> int | None:
        r = fn(*args[:-2])
        if not isinstance(r, bytes):
            return r  # type: ignore[no-any-return]
        mem = fs.memory
        if mem is None or fs.alloc is None:
            return GIVE_FAILED
        return GIVE_FAILED if mem.give(args[-2], args[-1], r, fs.alloc) else 0

    return gives


def define_host(
    linker: wasmtime.Linker,
    fs: FastStore,
    module: str,
    name: str,
    params: Sequence[str],
    results: Sequence[str],
    fn: Callable[..., int | None],
    soft: type[Exception] | None = None,
    field_limit: int = 0,
    gives: bool = False,
) -> None:
    """Define ``module.name`` in ``linker`` as an unchecked host function.

    ``fn`` receives i32 params as unsigned ints (pointers and lengths are u32 in
    wasm32) and i64 params as signed ints, and returns the single result (or None).
    A Python exception in ``fn`` becomes a trap; the exception is re-raised from the
    guest call as a ``GuestTrap`` carrying it as ``cause``. An exception of type
    ``soft`` is an answer instead: its ``status`` attribute becomes the result (the
    ABI's error statuses), handled here so a hostcall needs no wrapper of its own.

    ``field_limit`` makes a "field" hostcall of a ``(map_type, name_ptr, name_len,
    value_ptr, value_len) -> i32`` import: ``fn(map_type, field)`` gets the field as
    ``fs.memory.field(..., field_limit)`` reads it (the code 2, out of bounds, before
    the memory is known), read in the crossing itself when that is C.

    ``gives`` makes a hostcall whose last two i32 parameters are where its result goes
    (``ret_ptr``, ``ret_len``): ``fn`` gets the others and answers bytes, which the
    crossing copies into memory the guest's ``fs.alloc`` allocates (``GuestMemory.give``;
    ``GIVE_FAILED`` when that fails), or a status.
    """
    if gives and (field_limit or len(params) < 2 or tuple(params[-2:]) != (I32, I32)):
        raise ValueError(f"{module}.{name}: a gives hostcall ends with two i32 parameters")
    if field_limit and (tuple(params) != (I32,) * 5 or tuple(results) != (I32,)):
        raise ValueError(f"{module}.{name}: a field hostcall takes 5 i32 and returns an i32")
    ty = wasmtime.FuncType([_KINDS[p] for p in params], [_KINDS[r] for r in results])
    n = len(params)
    kinds = tuple(params)
    has_result = bool(results)
    res64 = has_result and results[0] == I64
    all32 = all(k == I32 for k in kinds)
    Soft: type[Exception] = soft if soft is not None and has_result else _NeverRaised
    M = 0xFFFFFFFF
    if _wasmcall is not None:
        # the C trampoline, with a Host object (kept alive with the Store) as its env
        host = _wasmcall.Host(
            fs,
            fn,
            n,
            sum(1 << i for i, k in enumerate(kinds) if k == I64),
            0 if not has_result else 2 if res64 else 1,
            soft,
            field_limit,
            gives,
        )
        fs.keep.append((host, ty))
        _define(linker, module, name, ty, ctypes.c_void_p(_wasmcall.TRAMPOLINE), id(host))
        return
    if field_limit:
        fn = field_hostcall(fs, fn, field_limit)
    if gives:
        fn = giving_hostcall(fs, fn)

    # one closure per arity: a generic *args path costs a list and a loop per call
    if all32 and has_result and not res64 and n <= 5:
        if n == 0:

            def cb(env: Any, caller: Any, a: Any, na: int) -> int:
                fs.ran += 1
                try:
                    a[0] = fn()
                except Soft as exc:
                    a[0] = int(exc.status)  # type: ignore[attr-defined]
                except BaseException as exc:  # an exception must not unwind through C
                    return fs.trap_from(exc)
                return 0
        elif n == 1:

            def cb(env: Any, caller: Any, a: Any, na: int) -> int:
                fs.ran += 1
                try:
                    a[0] = fn(a[0] & M)
                except Soft as exc:
                    a[0] = int(exc.status)  # type: ignore[attr-defined]
                except BaseException as exc:
                    return fs.trap_from(exc)
                return 0
        elif n == 2:

            def cb(env: Any, caller: Any, a: Any, na: int) -> int:
                fs.ran += 1
                try:
                    a[0] = fn(a[0] & M, a[2] & M)
                except Soft as exc:
                    a[0] = int(exc.status)  # type: ignore[attr-defined]
                except BaseException as exc:
                    return fs.trap_from(exc)
                return 0
        elif n == 3:

            def cb(env: Any, caller: Any, a: Any, na: int) -> int:
                fs.ran += 1
                try:
                    a[0] = fn(a[0] & M, a[2] & M, a[4] & M)
                except Soft as exc:
                    a[0] = int(exc.status)  # type: ignore[attr-defined]
                except BaseException as exc:
                    return fs.trap_from(exc)
                return 0
        elif n == 4:

            def cb(env: Any, caller: Any, a: Any, na: int) -> int:
                fs.ran += 1
                try:
                    a[0] = fn(a[0] & M, a[2] & M, a[4] & M, a[6] & M)
                except Soft as exc:
                    a[0] = int(exc.status)  # type: ignore[attr-defined]
                except BaseException as exc:
                    return fs.trap_from(exc)
                return 0
        else:

            def cb(env: Any, caller: Any, a: Any, na: int) -> int:
                fs.ran += 1
                try:
                    a[0] = fn(a[0] & M, a[2] & M, a[4] & M, a[6] & M, a[8] & M)
                except Soft as exc:
                    a[0] = int(exc.status)  # type: ignore[attr-defined]
                except BaseException as exc:
                    return fs.trap_from(exc)
                return 0
    else:
        masks = [M if k == I32 else -1 for k in kinds]
        mask_r = M if has_result and not res64 else -1

        def cb(env: Any, caller: Any, a: Any, na: int) -> int:
            fs.ran += 1
            try:
                r = fn(*[a[i * _SLOT] & masks[i] for i in range(n)])
                if has_result:
                    a[0] = r
            except Soft as exc:
                a[0] = int(exc.status) & mask_r  # type: ignore[attr-defined]
            except BaseException as exc:
                return fs.trap_from(exc)
            return 0

    c_cb = _HostCallback(cb)
    fs.keep.append((c_cb, ty))
    _define(linker, module, name, ty, c_cb, None)


def _define(
    linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType, cb: Any, env: Any
) -> None:
    mod_b = module.encode()
    name_b = name.encode()
    err = _define_unchecked(
        ctypes.cast(linker.ptr(), ctypes.c_void_p),
        mod_b,
        ctypes.c_size_t(len(mod_b)),
        name_b,
        ctypes.c_size_t(len(name_b)),
        ctypes.cast(ty.ptr(), ctypes.c_void_p),
        cb,
        ctypes.c_void_p(env) if env is not None else None,
        _NO_FINALIZER,
    )
    if err:
        raise wasmtime.WasmtimeError._from_ptr(
            ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t))
        )


if TYPE_CHECKING or _wasmcall is None:

    class _MemoryBase:
        """``view()`` in Python (``_wasmcall.MemoryBase`` when built)."""

        __slots__ = ("_fs", "_ref", "_size", "_view", "_seen")

        def __init__(self, fs: FastStore, addr: int) -> None:
            self._fs = fs
            self._ref = ctypes.c_void_p(addr)
            self._size = -1
            self._seen = -1
            self._view: memoryview = memoryview(b"")

        def view(self) -> memoryview:
            fs = self._fs
            if self._seen == fs.ran:
                return self._view
            self._seen = fs.ran
            ctx = fs.ctx
            size = _mem_size(ctx, self._ref)
            if size != self._size:
                ptr = _mem_data(ctx, self._ref) or 0
                if size and ptr:
                    self._view = memoryview((ctypes.c_ubyte * size).from_address(ptr)).cast("B")
                else:
                    self._view = memoryview(bytearray(0))
                self._size = size
            return self._view

        def read(self, ptr: int, size: int) -> bytes | None:
            view = self.view()
            if ptr + size > len(view):
                return None
            return bytes(view[ptr : ptr + size])

        def write(self, ptr: int, data: bytes) -> bool:
            view = self.view()
            end = ptr + len(data)
            if end > len(view):
                return False
            view[ptr:end] = data
            return True

        def give(self, ret_ptr: int, ret_len: int, data: bytes, alloc: Callable[[int], Any]) -> int:
            """``data`` into a block from ``alloc(size)`` (a guest call), its address and
            size written at ``ret_ptr``/``ret_len``: 0, or 1 a result pointer out of
            bounds, 2 the allocator returned 0, 3 its block is not inside the memory."""
            view = self.view()
            n = len(view)
            if ret_ptr + 4 > n or ret_len + 4 > n:
                return 1
            if not data:
                view[ret_ptr : ret_ptr + 4] = bytes(4)
                view[ret_len : ret_len + 4] = bytes(4)
                return 0
            addr = alloc(len(data)) & 0xFFFFFFFF
            if not addr:
                return 2
            # the allocator ran: memory may have grown (never shrunk, so the result
            # pointers checked above are still in bounds)
            if not self.write(addr, data):
                return 3
            view = self.view()
            view[ret_ptr : ret_ptr + 4] = addr.to_bytes(4, "little")
            view[ret_len : ret_len + 4] = len(data).to_bytes(4, "little")
            return 0

        def field(self, kp: int, kl: int, vp: int, vl: int, limit: int) -> tuple[str, str] | int:
            """A header field at those pointers, as ``edge.wasm.context.field_code``
            answers, after the length and bounds checks (codes 1 and 2)."""
            if kl > limit:
                return 1
            k = self.read(kp, kl)
            if k is None:
                return 2
            if vl > limit:
                return 1
            v = self.read(vp, vl)
            if v is None:
                return 2
            from edge.wasm.context import field_code  # context imports this module

            return field_code(k, v)

        @property
        def size(self) -> int:
            return int(_mem_size(self._fs.ctx, self._ref))

else:
    _MemoryBase = _wasmcall.MemoryBase


class GuestMemory(_MemoryBase):
    """A ``memoryview`` over the guest's linear memory, cached between calls.

    ``view()`` checks the data size (one C call) and rebuilds the view only when
    it changed, i.e. after ``memory.grow``; it skips even that check while no guest
    code ran since the last one (``FastStore.ran``). Readers must call ``view()``
    again after any call into the guest, because the old view may then be stale.
    ``read(ptr, size)`` (None out of bounds) and ``write(ptr, data)`` (False out of
    bounds) copy without a view slice. ``field(kp, kl, vp, vl, limit)`` reads and checks
    a header field (``edge.wasm.context.field_code``); ``give`` hands the guest a result
    in memory it allocates (``PluginVM.give``). ``size`` is the memory's size now.
    """

    __slots__ = ("_mem",)

    def __init__(self, fs: FastStore, memory: wasmtime.Memory) -> None:
        self._mem = memory._memory  # the struct the view's C calls point at: kept alive
        super().__init__(fs, ctypes.addressof(self._mem))
