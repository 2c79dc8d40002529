"""Several guest callbacks in one call into wasmtime, through a tiny "driver" module.

Each Python -> wasm transition costs about a microsecond of ctypes and bookkeeping,
more than most SDK callbacks run. Callbacks that always follow each other with no
host work between them - ``proxy_on_context_create`` then
``proxy_on_request_headers`` when a request arrives, ``proxy_on_done``,
``proxy_on_log``, ``proxy_on_delete`` when it ends - are called in sequence by a
small module instantiated in the guest's own Store, importing the guest's exports:
one transition instead of two or three. The calls, their order and their arguments
are exactly those of the one-by-one path.

Two details keep it equivalent:

- the ``stage`` global says which callback was running when a call trapped
  (the root-only rule needs to know that the trap came from on_context_create);
- the effective context is reset before each callback, as the host does between
  separate calls: ``proxy_set_effective_context`` sets the ``switched`` global and
  the driver then calls the host's ``reenter`` before the next callback (so the
  common case costs no host call).

Missing exports are simply not called (a missing on_request_headers answers
Continue, 0). Compiled driver modules are cached per export set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import wasmtime

from edge.wasm.fastcall import I32, FastStore, GuestFunc, define_host

# stage values: which callback a trap interrupted
CONTEXT_CREATE = 1
REQUEST_HEADERS = 2
DONE = 3
LOG = 4
DELETE = 5

BEGIN = ("proxy_on_context_create", "proxy_on_request_headers")
FINISH = ("proxy_on_done", "proxy_on_log", "proxy_on_delete")
_SIGS = {
    "proxy_on_context_create": "(param i32 i32)",
    "proxy_on_request_headers": "(param i32 i32 i32) (result i32)",
    "proxy_on_done": "(param i32) (result i32)",
    "proxy_on_log": "(param i32)",
    "proxy_on_delete": "(param i32)",
}

_lock = threading.Lock()
_modules: dict[tuple[int, frozenset[str]], wasmtime.Module] = {}


def _stage(n: int, ctx_param: int = 0) -> str:
    # a switch of the effective context made by the previous callback ends here
    return (
        f"i32.const {n} global.set $stage "
        f"(if (global.get $switched) (then i32.const 0 global.set $switched "
        f"local.get {ctx_param} call $reenter)) "
    )


def driver_wat(present: frozenset[str]) -> str:
    imports = "".join(
        f'(import "g" "{n}" (func ${n} {_SIGS[n]}))' for n in BEGIN + FINISH if n in present
    )
    begin = ""
    if "proxy_on_context_create" in present:
        begin += _stage(CONTEXT_CREATE) + "local.get 0 local.get 1 call $proxy_on_context_create "
    if "proxy_on_request_headers" in present:
        begin += (
            _stage(REQUEST_HEADERS)
            + "local.get 0 local.get 2 local.get 3 call $proxy_on_request_headers"
        )
    else:
        begin += "i32.const 0"
    finish = ""
    for n, stage in zip(FINISH, (DONE, LOG, DELETE), strict=True):
        if n in present:
            finish += _stage(stage) + f"local.get 0 call ${n} "
            if n == "proxy_on_done":
                finish += "drop "
    return (
        "(module "
        '(import "h" "reenter" (func $reenter (param i32))) '
        f"{imports}"
        '(global $stage (export "stage") (mut i32) (i32.const 0)) '
        '(global $switched (export "switched") (mut i32) (i32.const 0)) '
        f'(func (export "begin") (param i32 i32 i32 i32) (result i32) {begin}) '
        f'(func (export "finish") (param i32) {finish}))'
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
    """``begin(ctx, root, num_headers, eos) -> action`` and ``finish(ctx)`` for one VM."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        fs: FastStore,
        funcs: dict[str, wasmtime.Func],
        reenter: Callable[[int], None],
    ) -> None:
        present = frozenset(n for n in BEGIN + FINISH if n in funcs)
        store = fs.store
        linker = wasmtime.Linker(engine)
        for n in present:
            linker.define(store, "g", n, funcs[n])
        define_host(linker, fs, "h", "reenter", (I32,), (), reenter)
        inst = linker.instantiate(store, _module(engine, present))
        ex = inst.exports(store)
        self._store = store
        self._stage: Any = ex["stage"]
        self._switched: Any = ex["switched"]
        begin = ex["begin"]
        finish = ex["finish"]
        assert isinstance(begin, wasmtime.Func) and isinstance(finish, wasmtime.Func)
        self.begin = GuestFunc(fs, begin, "begin", (I32, I32, I32, I32), (I32,)).bind()
        self.finish = GuestFunc(fs, finish, "finish", (I32,), ()).bind()

    def stage(self) -> int:
        """The callback the last call was in (after a trap: the one that trapped)."""
        return int(self._stage.value(self._store))

    def switched(self) -> None:
        """The guest changed the effective context: restore it before the next callback."""
        self._switched.set_value(self._store, wasmtime.Val.i32(1))
