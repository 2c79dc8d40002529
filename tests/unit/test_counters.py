import multiprocessing
from pathlib import Path

import pytest

from edge.counters import PROBE, CounterTable, default_path, key_hash, table_for


def incr(a: float, b: float, now: float) -> tuple[float, float, int]:
    return now, b + 1, int(b + 1)


def _hammer(path: str, n: int) -> None:
    t = CounterTable(path, slots=64)
    for _ in range(n):
        t.update("shared-key", incr)
        t.update(f"other-{n}", incr)
    t.close()


def test_update_and_peek_private() -> None:
    t = CounterTable(None, slots=16)
    assert t.peek("a") is None
    assert t.update("a", incr, now=5.0) == 1
    assert t.update("a", incr, now=6.0) == 2
    assert t.peek("a") == (6.0, 2.0)
    assert t.update("b", incr) == 1


def test_processes_share_exact_counts(tmp_path: Path) -> None:
    path = str(tmp_path / "c.shm")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(path, 500 + i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    t = CounterTable(path, slots=64)
    assert t.peek("shared-key")[1] == sum(500 + i for i in range(4))
    for i in range(4):
        assert t.peek(f"other-{500 + i}")[1] == 500 + i


def test_full_probe_run_evicts_least_recent() -> None:
    t = CounterTable(None, slots=1)  # every key lands in the same probe run
    for i in range(PROBE):
        t.update(f"k{i}", incr, now=float(i + 1))
    t.update("new", incr, now=100.0)
    assert t.peek("k0") is None  # the oldest was replaced
    assert t.peek("new") == (100.0, 1.0)
    assert t.peek("k1") is not None


def test_key_hash_is_stable_and_nonzero() -> None:
    assert key_hash("abc") == key_hash("abc") != key_hash("abd")
    assert key_hash("") != 0


def test_paths(tmp_path: Path) -> None:
    assert default_path({"counters_path": "/x/y.shm"}) == "/x/y.shm"
    p = default_path({"state_dir": str(tmp_path)})
    assert p.startswith(str(tmp_path)) and p.endswith(".shm")
    stale = tmp_path / "counters-1.shm"
    stale.write_bytes(b"")
    shared = {"state_dir": str(tmp_path), "role": "supervisor"}
    t = table_for(shared)
    assert table_for(shared) is t
    assert not stale.exists() and Path(p).exists()


def test_hash_cache_is_bounded_and_transparent(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge.counters as counters

    monkeypatch.setattr(counters, "HASH_CACHE_SIZE", 4)
    t = CounterTable(None, slots=1024)
    for round_ in (1, 2, 3):
        for i in range(10):  # more keys than the cache holds: it is cleared and refilled
            assert t.update(f"k{i}", incr, now=float(round_)) == round_
        assert len(t._hashes) <= 4
    assert t.peek("k7") == (3.0, 3.0)
