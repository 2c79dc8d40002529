"""Node-wide counters shared by every worker process (limit-count, limit-req, limit-conn).

Design: a fixed-size open-addressing hash table in a shared memory-mapped file.

- The file holds ``SLOTS + PROBE`` slots of 24 bytes: ``(key_hash u64, a f64, b f64)``.
  ``key_hash`` is a stable 64-bit BLAKE2b of the counter key (Python's ``hash`` is
  randomised per process, so it cannot be shared); 0 marks an empty slot. ``a`` is
  always the time of the last update (window start for limit-count), ``b`` the value.
- A key lives in one of ``PROBE`` consecutive slots starting at ``hash % SLOTS`` (the
  extra ``PROBE`` slots at the end mean a probe run never wraps). An update takes an
  ``fcntl`` byte-range write lock over exactly that run, reads, computes, writes and
  unlocks: two system calls and no allocation beyond the struct values, and workers
  touching different keys never contend. Record locks are released by the kernel if
  a worker dies, so a crash cannot wedge the table.
- When all ``PROBE`` slots of a run hold other keys, the slot with the oldest ``a`` is
  taken over, which resets that older key's counter: the table fails open under key
  floods rather than growing without bound (65536 slots by default, 1.5 MiB).
- Time is ``time.monotonic()``: CLOCK_MONOTONIC is system-wide on Linux, so all
  workers agree on it, and wall-clock jumps do not open or close windows.

Where the file lives: ``shared["counters_path"]`` if the process set it, else
``<state dir>/counters-<run>.shm``. The state dir comes from ``shared["state_dir"]``
or ``$EDGE_STATE_DIR`` (else the temp dir); ``<run>`` is ``$EDGE_RUN_ID``, else the
parent's pid when the parent is ``edge run`` (we are a worker), else our own pid. So
the workers of one node share a table and a restarted node starts from zero (a
leftover limit-conn count from a crashed run must not persist); the supervisor
removes tables of earlier runs.

With ``path=None`` the table is an anonymous mapping private to the process (tests, a
single process without a state dir). The ``policy`` of the limit plugins selects this
table with ``local``; a cluster-wide ``redis`` policy would implement ``update`` too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
import time
from collections.abc import Callable
from typing import Any

SLOT = struct.Struct("<Qdd")
SLOTS = 65536
PROBE = 8
_SIZE = SLOT.size
_RUN = PROBE * SLOT.size  # bytes of one key's probe run: the locked range
_unpack = SLOT.unpack_from
_pack = SLOT.pack_into
lockf = fcntl.lockf
LOCK_EX, LOCK_UN, SEEK_SET = fcntl.LOCK_EX, fcntl.LOCK_UN, os.SEEK_SET
# fn(a, b, now) -> (new_a, new_b, result); (0.0, 0.0) for a key not in the table
UpdateFn = Callable[[float, float, float], tuple[float, float, Any]]


def key_hash(key: str) -> int:
    h = int.from_bytes(
        hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "little"
    )
    return h or 1


# recently hashed keys: a hot key (one client, one route) is hashed once, not per request.
# Bounded: cleared whole when full, so a flood of distinct keys costs one blake2b each
# and at most this many keys (each up to ~1 KiB, see plugins/_limit.py) stay in memory.
HASH_CACHE_SIZE = 4096


class CounterTable:
    def __init__(self, path: str | None, slots: int = SLOTS) -> None:
        self.path = path
        self.slots = slots
        self._hashes: dict[str, int] = {}
        size = (slots + PROBE) * SLOT.size
        if path is None:
            self.fd = -1
            self.mm = mmap.mmap(-1, size)
        else:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            # every opener extends to the same size; a new file reads as zeros (empty)
            if os.fstat(self.fd).st_size < size:
                os.ftruncate(self.fd, size)
            self.mm = mmap.mmap(self.fd, size)

    def close(self) -> None:
        self.mm.close()
        if self.fd >= 0:
            os.close(self.fd)

    def update(self, key: str, fn: UpdateFn, now: float | None = None) -> Any:
        """Apply ``fn`` to ``key``'s ``(a, b)`` atomically across processes."""
        hashes = self._hashes
        h = hashes.get(key)
        if h is None:
            if len(hashes) >= HASH_CACHE_SIZE:
                hashes.clear()
            h = hashes[key] = key_hash(key)
        off = (h % self.slots) * _SIZE
        if now is None:
            now = time.monotonic()
        fd = self.fd
        if fd >= 0:
            lockf(fd, LOCK_EX, _RUN, off, SEEK_SET)
        try:
            mm = self.mm
            # the key's own slot first: the common case is a hit at the start of the run
            sh, a, b = _unpack(mm, off)
            target = off
            if sh != h and sh != 0:
                target = -1
                oldest = off
                oldest_a = a
                a = b = 0.0
                for o in range(off + _SIZE, off + _RUN, _SIZE):
                    sh, sa, sb = _unpack(mm, o)
                    if sh == h:
                        target, a, b = o, sa, sb
                        break
                    if sh == 0:
                        target = o
                        break
                    if sa < oldest_a:
                        oldest_a, oldest = sa, o
                if target < 0:
                    target = oldest  # evict the least recently updated key
            elif sh == 0:
                a = b = 0.0
            na, nb, result = fn(a, b, now)
            _pack(mm, target, h, na, nb)
            return result
        finally:
            if fd >= 0:
                lockf(fd, LOCK_UN, _RUN, off, SEEK_SET)

    def peek(self, key: str) -> tuple[float, float] | None:
        h = key_hash(key)
        off = (h % self.slots) * SLOT.size
        for i in range(PROBE):
            sh, sa, sb = SLOT.unpack_from(self.mm, off + i * SLOT.size)
            if sh == h:
                return sa, sb
            if sh == 0:
                return None
        return None


def _run_token() -> str:
    """The pid of the node's supervisor: our parent if it is ``edge run``, else us."""
    env = os.environ.get("EDGE_RUN_ID")
    if env:
        return env
    ppid = os.getppid()
    try:
        with open(f"/proc/{ppid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        argv = []
    is_edge = b"run" in argv and any(a == b"edge" or a.endswith(b"/edge") for a in argv)
    return str(ppid if is_edge else os.getpid())


def default_path(shared: dict[str, Any]) -> str:
    explicit = shared.get("counters_path")
    if explicit:
        return str(explicit)
    state = shared.get("state_dir") or os.environ.get("EDGE_STATE_DIR")
    if state:
        return os.path.join(str(state), f"counters-{_run_token()}.shm")
    return os.path.join(tempfile.gettempdir(), f"edge-counters-{os.getuid()}-{_run_token()}.shm")


def _remove_stale(current: str) -> None:
    """Tables of earlier runs in the same directory (the supervisor owns the directory)."""
    directory = os.path.dirname(current)
    for name in os.listdir(directory):
        p = os.path.join(directory, name)
        if name.startswith("counters-") and name.endswith(".shm") and p != current:
            with contextlib.suppress(OSError):
                os.unlink(p)


def table_for(shared: dict[str, Any]) -> CounterTable:
    """The process's table, opened once and kept across snapshot swaps in ``shared``."""
    t = shared.get("counter_table")
    if t is None:
        path = default_path(shared)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if shared.get("role") == "supervisor":
                _remove_stale(path)
            t = CounterTable(path)
        except OSError:
            # no writable place: counters become per process, still bounded
            t = CounterTable(None)
        shared["counter_table"] = t
    return t  # type: ignore[no-any-return]
