"""The epoch ticker: increments the Engine's epoch every tick, which is how guest CPU
budgets are enforced (``edge.wasm.fastcall.FastStore``).

A Python thread doing this has to take the GIL every tick, and each time it does, the
request path loses it at its next system call and waits to get it back: measured, a
2 ms ticker thread made every request of the worker about 20% more expensive, WASM or
not. So on Linux/glibc the ticks come from a POSIX timer (``timer_create`` with
``SIGEV_THREAD``) whose expirations call wasmtime's ``wasmtime_engine_increment_epoch``
directly, in a thread of the C library: no Python, no GIL. The notification function
receives the timer's ``sigval`` (a pointer-sized union, passed as a pointer is on
x86-64 and aarch64), which holds the engine pointer. Elsewhere, or if the timer cannot
be created, a Python thread ticks as before.

The Engine a native ticker points at is never freed (an expiration could otherwise
run after interpreter teardown freed it): it lives as long as the process anyway.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading
from typing import Any

import wasmtime
from wasmtime import _bindings as ffi

from edge.wasm import fastcall

log = logging.getLogger("edge.wasm")

_SIGEV_THREAD = 2
_CLOCK_MONOTONIC = 1
_NATIVE_ARCHES = frozenset({"x86_64", "aarch64"})


class _Sigevent(ctypes.Structure):
    # glibc's struct sigevent for SIGEV_THREAD: 64 bytes on 64-bit Linux
    _fields_ = [
        ("value", ctypes.c_void_p),
        ("signo", ctypes.c_int),
        ("notify", ctypes.c_int),
        ("function", ctypes.c_void_p),
        ("attribute", ctypes.c_void_p),
        ("_pad", ctypes.c_int * 8),
    ]


class _Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("interval", _Timespec), ("value", _Timespec)]


class _ThreadTicker(threading.Thread):
    def __init__(self, engine: wasmtime.Engine, period_ns: int) -> None:
        super().__init__(name="edge-wasm-epoch", daemon=True)
        self.engine = engine
        self.period = period_ns / 1e9
        self.stop = threading.Event()

    def run(self) -> None:
        inc = self.engine.increment_epoch
        wait = self.stop.wait
        while not wait(self.period):
            inc()


# the running ticker of this process and what it needs kept alive
_keep: list[Any] = []
_thread_ticking = False


def start(engine: wasmtime.Engine, period_ns: int) -> str:
    """Tick ``engine``'s epoch every ``period_ns``; returns how ("timer" or "thread")."""
    global _thread_ticking
    if platform.system() == "Linux" and platform.machine() in _NATIVE_ARCHES:
        try:
            _start_timer(engine, period_ns)
            if not _thread_ticking:
                # no Python thread has to run while a guest does: calls keep the GIL
                fastcall.release_gil_in_calls(False)
            return "timer"
        except (OSError, AttributeError) as e:
            log.warning("wasm: no native epoch timer (%s); ticking from a thread", e)
    _thread_ticking = True
    fastcall.release_gil_in_calls(True)
    t = _ThreadTicker(engine, period_ns)
    t.start()
    _keep.append(t)
    return "thread"


def _start_timer(engine: wasmtime.Engine, period_ns: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    timer_create, timer_settime = libc.timer_create, libc.timer_settime
    ev = _Sigevent()
    ev.value = ctypes.cast(engine.ptr(), ctypes.c_void_p).value
    ev.notify = _SIGEV_THREAD
    ev.function = ctypes.cast(ffi._wasmtime_engine_increment_epoch, ctypes.c_void_p).value
    timer = ctypes.c_void_p()
    if timer_create(_CLOCK_MONOTONIC, ctypes.byref(ev), ctypes.byref(timer)) != 0:
        raise OSError(ctypes.get_errno(), "timer_create failed")
    sec, nsec = divmod(period_ns, 1_000_000_000)
    spec = _Itimerspec(_Timespec(sec, nsec), _Timespec(sec, nsec))
    if timer_settime(timer, 0, ctypes.byref(spec), None) != 0:
        err = ctypes.get_errno()
        libc.timer_delete(timer)
        raise OSError(err, "timer_settime failed")
    # never freed: see the module docstring
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(engine))
    _keep.append((engine, timer))
