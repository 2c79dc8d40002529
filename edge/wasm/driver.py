"""Several guest callbacks in one call into wasmtime, through a tiny "driver" module.

Each Python -> wasm transition costs about a microsecond of ctypes and bookkeeping,
more than most SDK callbacks run. Callbacks that follow each other with no host work
between them are called in sequence by a small module instantiated in the guest's
own Store, importing the guest's exports: one transition instead of two or three.
``step(ctx, root, num_headers, eos, what)`` runs, in order, those ``what`` asks for:

- ``CREATE``: ``proxy_on_context_create``;
- ``REQUEST`` or ``RESPONSE``: that headers callback, whose action it returns (0 for
  Continue, 1 for any other);
- ``END``: the end of the stream (``proxy_on_done``, ``proxy_on_log``,
  ``proxy_on_delete``), answering ``ENDED``; after a headers callback only when that
  answered Continue and left nothing open (``hold``: the host saw a local response or
  an http_call). A plugin asks for it there when the module has no callback left for
  the stream, so a request costs one transition, not two or three; the log phase asks
  for it alone.

The calls, their order and their arguments are exactly those of the one-by-one path.
Missing exports are simply not called (a missing headers callback answers Continue, 0).
Two details keep it equivalent:

- the ``stage`` global says which callback was running when a call trapped (the
  root-only rule needs to know that the trap came from on_context_create; a trap at
  the end of the stream is not the request's);
- the effective context is reset before each callback, as the host does between
  separate calls: ``proxy_set_effective_context`` sets the ``switched`` flag and the
  driver then calls the host's ``reenter`` before the next callback (so the common
  case costs no host call).

The host sets its flags in a memory of the driver's own (a byte written through a
pointer: a wasmtime-py ``Global.set_value`` costs 20 µs). Compiled driver modules are
cached per export set.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any, Final

import wasmtime

from edge.wasm.fastcall import I32, FastStore, GuestFunc, define_host

# stage values: which callback a trap interrupted
CONTEXT_CREATE: Final = 1
REQUEST_HEADERS: Final = 2
DONE: Final = 3
LOG: Final = 4
DELETE: Final = 5
RESPONSE_HEADERS: Final = 6
# ``what`` bits of ``step``
CREATE: Final = 1
REQUEST: Final = 2
RESPONSE: Final = 4
END: Final = 8
# what ``step`` returns when it ended the stream (else 1 for any action but Continue, 0)
ENDED: Final = 2
# the flag bytes of the driver's memory
_HOLD = 0
_SWITCHED = 1

BEGIN = ("proxy_on_context_create", "proxy_on_request_headers")
FINISH = ("proxy_on_done", "proxy_on_log", "proxy_on_delete")
CALLED = (*BEGIN, "proxy_on_response_headers", *FINISH)
_SIGS = {
    "proxy_on_context_create": "(param i32 i32)",
    "proxy_on_request_headers": "(param i32 i32 i32) (result i32)",
    "proxy_on_response_headers": "(param i32 i32 i32) (result i32)",
    "proxy_on_done": "(param i32) (result i32)",
    "proxy_on_log": "(param i32)",
    "proxy_on_delete": "(param i32)",
}

_lock = threading.Lock()
_modules: dict[tuple[int, frozenset[str]], wasmtime.Module] = {}


def _stage(n: int) -> str:
    # a switch of the effective context made by the previous callback ends here
    return (
        f"i32.const {n} global.set $stage "
        f"(if (i32.load8_u (i32.const {_SWITCHED})) (then "
        f"(i32.store8 (i32.const {_SWITCHED}) (i32.const 0)) local.get 0 call $reenter)) "
    )


def _call_if(what: int, name: str, stage: int, args: str, present: frozenset[str]) -> str:
    if name not in present:
        return ""
    call = f"{_stage(stage)}{args} call ${name}"
    if name.endswith("_headers"):
        call += " local.set $r"
    elif name == "proxy_on_done":
        call += " drop"
    return f"(if (i32.and (local.get 4) (i32.const {what})) (then {call})) "


def driver_wat(present: frozenset[str]) -> str:
    imports = "".join(f'(import "g" "{n}" (func ${n} {_SIGS[n]}))' for n in CALLED if n in present)
    headers = "local.get 0 local.get 2 local.get 3"
    finish = "".join(
        f"{_stage(stage)}local.get 0 call ${n}{' drop' if n == 'proxy_on_done' else ''} "
        for n, stage in zip(FINISH, (DONE, LOG, DELETE), strict=True)
        if n in present
    )
    end = (
        f"(if (i32.and (local.get 4) (i32.const {END})) (then "
        f"(if (i32.eqz (i32.or (local.get $r) (i32.load8_u (i32.const {_HOLD})))) "
        f"(then {finish}(return (i32.const {ENDED})))))) "
    )
    body = (
        f"(i32.store8 (i32.const {_HOLD}) (i32.const 0)) i32.const 0 global.set $stage "
        + _call_if(
            CREATE, "proxy_on_context_create", CONTEXT_CREATE, "local.get 0 local.get 1", present
        )
        + _call_if(REQUEST, "proxy_on_request_headers", REQUEST_HEADERS, headers, present)
        + _call_if(RESPONSE, "proxy_on_response_headers", RESPONSE_HEADERS, headers, present)
        + end
        + "(i32.ne (local.get $r) (i32.const 0))"
    )
    return (
        "(module "
        '(import "h" "reenter" (func $reenter (param i32))) '
        f"{imports}"
        '(memory (export "flags") 1 1) '
        '(global $stage (export "stage") (mut i32) (i32.const 0)) '
        '(func (export "step") (param i32 i32 i32 i32 i32) (result i32) (local $r i32) '
        f"{body})) "
    )


def _module(engine: wasmtime.Engine, present: frozenset[str]) -> wasmtime.Module:
    key = (id(engine), present)
    m = _modules.get(key)
    if m is None:
        with _lock:
            m = _modules.get(key)
            if m is None:
                m = wasmtime.Module(engine, driver_wat(present))
                _modules[key] = m
    return m


class Driver:
    """``step(ctx, root, num_headers, eos, what) -> action or ENDED`` for one VM."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        fs: FastStore,
        funcs: dict[str, wasmtime.Func],
        reenter: Callable[[int], None],
    ) -> None:
        present = frozenset(n for n in CALLED if n in funcs)
        store = fs.store
        linker = wasmtime.Linker(engine)
        for n in present:
            linker.define(store, "g", n, funcs[n])
        define_host(linker, fs, "h", "reenter", (I32,), (), reenter)
        inst = linker.instantiate(store, _module(engine, present))
        ex = inst.exports(store)
        self._store = store
        self._stage: Any = ex["stage"]
        flags = ex["flags"]
        step = ex["step"]
        assert isinstance(flags, wasmtime.Memory) and isinstance(step, wasmtime.Func)
        # a memory of one page that never grows: its address is fixed for the Store's life
        self._flags = (ctypes.c_uint8 * 2).from_address(
            ctypes.addressof(flags.data_ptr(store).contents)
        )
        self.step = GuestFunc(fs, step, "step", (I32, I32, I32, I32, I32), (I32,)).bind()

    def stage(self) -> int:
        """The callback the last call was in (after a trap: the one that trapped)."""
        return int(self._stage.value(self._store))

    def switched(self) -> None:
        """The guest changed the effective context: restore it before the next callback."""
        self._flags[_SWITCHED] = 1

    def hold(self) -> None:
        """The stream must outlive the callback running (``END`` does not end it)."""
        self._flags[_HOLD] = 1
