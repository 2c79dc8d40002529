"""edge.wasm.epoch: the ticks that end a spinning guest, from a native timer or a thread."""

from __future__ import annotations

import platform
import threading

import pytest
import wasmtime

from edge.wasm import epoch
from edge.wasm.engine import engine, ticker

SPIN = '(module (func (export "spin") (loop (br 0))))'


def _interrupted_by_ticks(eng: wasmtime.Engine, ticks: int) -> bool:
    """Whether a spinning guest with a deadline of ``ticks`` epochs was stopped by the
    ticker (a watchdog stops it after 30 s otherwise, so a broken ticker fails the
    test instead of hanging it)."""
    store = wasmtime.Store(eng)
    store.set_epoch_deadline(ticks)
    spin = wasmtime.Instance(store, wasmtime.Module(eng, SPIN), []).exports(store)["spin"]
    rescued = threading.Event()

    def rescue() -> None:
        rescued.set()
        for _ in range(ticks + 1):
            eng.increment_epoch()

    watchdog = threading.Timer(30.0, rescue)
    watchdog.start()
    try:
        with pytest.raises(wasmtime.Trap) as ei:
            spin(store)  # type: ignore[operator]
    finally:
        watchdog.cancel()
    assert "interrupt" in str(ei.value)
    return not rescued.is_set()


def _engine() -> wasmtime.Engine:
    cfg = wasmtime.Config()
    cfg.epoch_interruption = True
    return wasmtime.Engine(cfg)


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"),
    reason="the native timer is for Linux on x86-64 and aarch64",
)
def test_the_process_engine_ticks_from_a_native_timer() -> None:
    engine()
    assert ticker() == "timer"  # no Python thread taking the GIL 500 times a second


def test_native_timer_ticks_an_engine() -> None:
    eng = _engine()
    assert epoch.start(eng, 1_000_000) in ("timer", "thread")
    assert _interrupted_by_ticks(eng, 20)


def test_thread_ticker_ticks_an_engine() -> None:
    eng = _engine()
    t = epoch._ThreadTicker(eng, 1_000_000)
    t.start()
    try:
        assert _interrupted_by_ticks(eng, 20)
    finally:
        t.stop.set()
        t.join()
