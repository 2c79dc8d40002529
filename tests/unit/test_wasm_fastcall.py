"""edge.wasm.fastcall: unchecked calls, host callbacks, memory view, traps, deadlines."""

from __future__ import annotations

import pytest
import wasmtime

from edge.wasm.engine import deadline_ticks, engine
from edge.wasm.fastcall import (
    I32,
    I64,
    FastStore,
    GuestFunc,
    GuestMemory,
    GuestTrap,
    ProcExit,
    define_host,
)

WAT = """
(module
  (import "env" "add" (func $add (param i32 i32) (result i32)))
  (import "env" "wide" (func $wide (param i32 i64) (result i64)))
  (import "env" "exit" (func $exit (param i32)))
  (import "env" "boom" (func $boom (result i32)))
  (memory (export "memory") 1)
  (func (export "call_add") (param i32 i32) (result i32) local.get 0 local.get 1 call $add)
  (func (export "call_wide") (param i32 i64) (result i64) local.get 0 local.get 1 call $wide)
  (func (export "call_exit") (param i32) local.get 0 call $exit)
  (func (export "call_boom") (result i32) call $boom)
  (func (export "sum") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "neg") (result i32) i32.const -1)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "spin") (loop (br 0)))
  (func (export "unreachable") unreachable)
  (func $deep (export "deep") (param i32) (result i32) local.get 0 i32.const 1 i32.add call $deep)
  (func (export "oob") (result i32) i32.const 0x7FFFFFF0 i32.load)
)
"""


class Env:
    def __init__(self) -> None:
        eng = engine()
        self.store = wasmtime.Store(eng)
        self.fs = FastStore(self.store, deadline_ticks(20))
        linker = wasmtime.Linker(eng)
        self.seen: list[tuple[int, ...]] = []

        def add(a: int, b: int) -> int:
            self.seen.append((a, b))
            return a + b

        def wide(a: int, b: int) -> int:
            return a * 1000 + b

        def exit_(code: int) -> None:
            raise ProcExit(code)

        def boom() -> int:
            raise RuntimeError("host bug")

        define_host(linker, self.fs, "env", "add", [I32, I32], [I32], add)
        define_host(linker, self.fs, "env", "wide", [I32, I64], [I64], wide)
        define_host(linker, self.fs, "env", "exit", [I32], [], exit_)
        define_host(linker, self.fs, "env", "boom", [], [I32], boom)
        self.fs.set_deadline()
        self.inst = linker.instantiate(self.store, wasmtime.Module(eng, wasmtime.wat2wasm(WAT)))
        self.ex = self.inst.exports(self.store)

    def f(self, name: str, params: list[str], results: list[str]) -> GuestFunc:
        return GuestFunc(self.fs, self.ex[name], name, params, results)


@pytest.fixture
def env() -> Env:
    return Env()


def test_call_and_results(env: Env) -> None:
    assert env.f("sum", [I32, I32], [I32])(2, 40) == 42
    # i32 results come back unsigned, as wasm32 pointers are
    assert env.f("neg", [], [I32])() == 0xFFFFFFFF


def test_host_callback_gets_unsigned_i32_and_signed_i64(env: Env) -> None:
    assert env.f("call_add", [I32, I32], [I32])(0xFFFFFFFF, 0) == 0xFFFFFFFF
    assert env.seen == [(0xFFFFFFFF, 0)]
    assert env.f("call_wide", [I32, I64], [I64])(3, -5) == 2995


def test_signature_checked_at_load(env: Env) -> None:
    with pytest.raises(TypeError, match="expected"):
        env.f("sum", [I32], [I32])
    with pytest.raises(TypeError):
        env.f("sum", [I32, I32], [I64])


@pytest.mark.parametrize(
    ("export", "params", "args", "kind"),
    [
        ("unreachable", [], [], "unreachable"),
        ("deep", [I32], [0], "stack_overflow"),
        ("oob", [], [], "memory"),
        ("call_exit", [I32], [3], "proc_exit"),
        ("call_boom", [], [], "host"),
    ],
)
def test_traps_are_classified(
    env: Env, export: str, params: list[str], args: list[int], kind: str
) -> None:
    results = [I32] if export in ("deep", "oob", "call_boom") else []
    f = env.f(export, params, results)
    with pytest.raises(GuestTrap) as ei:
        f(*args)
    assert ei.value.kind == kind
    # the reason reaches logs as text, without the C string's terminator
    assert "\0" not in ei.value.message
    # the store stays usable after a trap
    assert env.f("sum", [I32, I32], [I32])(1, 1) == 2


def test_host_exception_is_kept_as_cause(env: Env) -> None:
    with pytest.raises(GuestTrap) as ei:
        env.f("call_boom", [], [I32])()
    assert isinstance(ei.value.cause, RuntimeError)


def test_infinite_loop_is_interrupted(env: Env) -> None:
    with pytest.raises(GuestTrap) as ei:
        env.f("spin", [], [])()
    assert ei.value.kind == "interrupt"
    assert env.f("sum", [I32, I32], [I32])(2, 2) == 4


def test_memory_view_follows_growth(env: Env) -> None:
    mem = GuestMemory(env.fs, env.ex["memory"])
    v = mem.view()
    assert len(v) == 65536
    v[10:13] = b"abc"
    assert mem.view() is v  # cached while the size is unchanged
    assert env.f("grow", [I32], [I32])(2) == 1
    v2 = mem.view()
    assert len(v2) == 3 * 65536
    assert bytes(v2[10:13]) == b"abc"


def test_memory_limit_fails_growth() -> None:
    e = Env()
    e.store.set_limits(memory_size=2 * 65536)
    grow = e.f("grow", [I32], [I32])
    assert grow(1) == 1
    assert grow(1) == 0xFFFFFFFF  # -1: the guest sees a failed allocation


def test_reentrant_call_from_host_function() -> None:
    eng = engine()
    store = wasmtime.Store(eng)
    fs = FastStore(store, deadline_ticks(20))
    linker = wasmtime.Linker(eng)
    holder: dict[str, GuestFunc] = {}

    def add(a: int, b: int) -> int:
        return holder["sum"](a, b) * 2

    define_host(linker, fs, "env", "add", [I32, I32], [I32], add)
    for name, p, r in (("wide", [I32, I64], [I64]), ("exit", [I32], []), ("boom", [], [I32])):
        define_host(linker, fs, "env", name, p, r, lambda *a, r=r: 0 if r else None)
    inst = linker.instantiate(store, wasmtime.Module(eng, wasmtime.wat2wasm(WAT)))
    ex = inst.exports(store)
    holder["sum"] = GuestFunc(fs, ex["sum"], "sum", [I32, I32], [I32])
    outer = GuestFunc(fs, ex["call_add"], "call_add", [I32, I32], [I32])
    assert outer(3, 4) == 14
    assert fs.depth == 0


def test_cpu_budget_through_the_deadline_callback() -> None:
    """With a budget, the epoch deadline only triggers a CPU-time check; a spinning
    guest still traps as an interrupt, and the store stays usable."""
    eng = engine()
    store = wasmtime.Store(eng)
    fs = FastStore(store, deadline_ticks(5), budget_ms=10)
    linker = wasmtime.Linker(eng)
    for name, p, r in (
        ("add", [I32, I32], [I32]),
        ("wide", [I32, I64], [I64]),
        ("exit", [I32], []),
        ("boom", [], [I32]),
    ):
        define_host(linker, fs, "env", name, p, r, lambda *a, r=r: 0 if r else None)
    fs.set_deadline()
    inst = linker.instantiate(store, wasmtime.Module(eng, wasmtime.wat2wasm(WAT)))
    ex = inst.exports(store)
    spin = GuestFunc(fs, ex["spin"], "spin", [], [])
    with pytest.raises(GuestTrap) as ei:
        spin()
    assert ei.value.kind == "interrupt" and "CPU budget" in ei.value.message
    assert GuestFunc(fs, ex["sum"], "sum", [I32, I32], [I32])(1, 2) == 3


def test_budget_is_per_call_not_cumulative() -> None:
    """Many short calls, together far over the budget, never trap: the deadline
    callback measures each call from the first tick it sees it in."""
    import time

    eng = engine()
    store = wasmtime.Store(eng)
    fs = FastStore(store, budget_ms=2)
    wat = """(module (memory (export "memory") 1)
      (func (export "busy") (param i32)
        (loop (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
              (br_if 0 (local.get 0)))))"""
    inst = wasmtime.Linker(eng).instantiate(store, wasmtime.Module(eng, wasmtime.wat2wasm(wat)))
    busy = GuestFunc(fs, inst.exports(store)["busy"], "busy", [I32], [])
    start = time.thread_time()
    for _ in range(200_000):  # bounded; ends once 20 ms of CPU (10 budgets) were spent
        busy(2000)
        if time.thread_time() - start > 0.02:
            break
    assert time.thread_time() - start > 0.02
    assert fs.seq > 1


def test_bound_calls_behave_as_the_function(env: Env) -> None:
    """``GuestFunc.bind``: the VM's per-arity closures return, trap and recover as
    ``__call__`` does, and a call made from a host function still nests."""
    add = env.f("call_add", [I32, I32], [I32]).bind()
    assert add(0xFFFFFFFF, 0) == 0xFFFFFFFF and env.seen == [(0xFFFFFFFF, 0)]
    grow = env.f("grow", [I32], [I32]).bind()
    assert grow(1) == 1  # the old size in pages
    exit_ = env.f("call_exit", [I32], []).bind()
    for _ in range(2):  # the trap slot is renewed after each trap
        with pytest.raises(GuestTrap) as e:
            exit_(3)
        assert e.value.kind == "proc_exit"
    assert add(2, 3) == 5
    spin = env.f("spin", [], []).bind()  # no per-arity closure: the method itself
    env.fs.set_budget_ms(20.0)
    with pytest.raises(GuestTrap) as e:
        spin()
    assert e.value.kind == "interrupt"
    assert add(4, 5) == 9


def test_a_field_hostcall_gets_the_field_it_points_at() -> None:
    eng = engine()
    store = wasmtime.Store(eng)
    fs = FastStore(store, deadline_ticks(20))
    linker = wasmtime.Linker(eng)
    seen: list[tuple[int, object]] = []

    def on_field(map_type: int, field: object) -> int:
        seen.append((map_type, field))
        return 7

    define_host(linker, fs, "env", "put", (I32,) * 5, (I32,), on_field, None, 64)
    inst = linker.instantiate(
        store,
        wasmtime.Module(
            eng,
            """(module
              (import "env" "put" (func $put (param i32 i32 i32 i32 i32) (result i32)))
              (memory (export "memory") 1)
              (data (i32.const 16) "X-Name" "v\\0a")
              (func (export "put") (param i32 i32 i32 i32 i32) (result i32)
                local.get 0 local.get 1 local.get 2 local.get 3 local.get 4 call $put))""",
        ),
    )
    ex = inst.exports(store)
    put = GuestFunc(fs, ex["put"], "put", (I32,) * 5, (I32,))
    # the memory not known yet: out of bounds, whatever the pointers
    assert put(2, 16, 6, 22, 1) == 7 and seen[-1] == (2, 2)
    fs.memory = GuestMemory(fs, ex["memory"])
    assert put(2, 16, 6, 22, 1) == 7 and seen[-1] == (2, ("x-name", "v"))
    # the checks of GuestMemory.field: a value with LF, a name past the limit, out of bounds
    put(0, 16, 6, 22, 2)
    put(0, 16, 65, 22, 1)
    put(0, 0xFFFF_FFF0, 6, 22, 1)
    assert [f for _, f in seen[-3:]] == [3, 1, 2]
    # the C crossing keeps the last field read: the same bytes give the same field, and
    # other bytes give theirs, at the same place or elsewhere with the same lengths
    assert put(2, 16, 6, 22, 1) == 7 and seen[-1] == (2, ("x-name", "v"))
    assert fs.memory.write(16, b"X-Nome")
    put(2, 16, 6, 22, 1)
    assert seen[-1] == (2, ("x-nome", "v"))
    assert fs.memory.write(40, b"A-BcdeZ")
    put(1, 40, 6, 46, 1)
    assert seen[-1] == (1, ("a-bcde", "Z"))
    put(1, 40, 6, 23, 1)  # the value is the LF now
    assert seen[-1] == (1, 3)
