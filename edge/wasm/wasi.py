"""WASI preview1, the subset proxy-wasm hosts offer: no file system, no sockets.

Registered under both ``wasi_snapshot_preview1`` and ``wasi_unstable`` (the table is
the same; ``vm.py`` defines it for whichever the module imports). ``fd_write`` to
stdout/stderr becomes plugin log lines (info/error); every function not here answers
ENOSYS. Errno values are WASI's (abi.WasiErrno).
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge.wasm.abi import AbiError, LogLevel, WasiErrno, pack_u32, pack_u64
from edge.wasm.fastcall import ProcExit

if TYPE_CHECKING:
    from edge.wasm.vm import PluginVM

I = "i32"  # noqa: E741
L = "i64"
Entry = tuple[tuple[str, ...], tuple[str, ...], Callable[..., Any]]

MAX_RANDOM = 64 << 10  # cpp-host limits.h
MAX_IOVS = 1024
MAX_WRITE = 1 << 20
MAX_LINE = 4096  # a partial line longer than this is logged as is
_FILETYPE_CHARACTER_DEVICE = 2
_RIGHT_FD_WRITE = 1 << 6
_RIGHT_FD_READ = 1 << 1


def _guarded(fn: Callable[..., int]) -> Callable[..., int]:
    def call(*args: int) -> int:
        try:
            return fn(*args)
        except AbiError:
            return WasiErrno.FAULT

    return call


def table(vm: PluginVM) -> dict[str, Entry]:
    partial: dict[int, bytes] = {}

    def fd_write(fd: int, iovs: int, n: int, ret: int) -> int:
        if fd not in (1, 2):
            return WasiErrno.BADF
        if n > MAX_IOVS:
            return WasiErrno.INVAL
        vec = vm.read(iovs, 8 * n)
        chunks = []
        total = 0
        for i in range(n):
            p, ln = struct.unpack_from("<II", vec, 8 * i)
            total += ln
            if total > MAX_WRITE:
                return WasiErrno.INVAL
            chunks.append(vm.read(p, ln))
        vm.check_out(ret)
        data = partial.pop(fd, b"") + b"".join(chunks)
        *lines, rest = data.split(b"\n")
        if len(rest) > MAX_LINE:
            lines.append(rest)
            rest = b""
        if rest:
            partial[fd] = rest
        level = LogLevel.INFO if fd == 1 else LogLevel.ERROR
        for line in lines:
            vm.guest_log(level, line.decode("utf-8", "replace"))
        vm.write_u32(ret, total)
        return WasiErrno.SUCCESS

    def fd_read(fd: int, iovs: int, n: int, ret: int) -> int:
        return WasiErrno.BADF if fd > 2 else WasiErrno.NOSYS

    def clock_time_get(clock_id: int, _precision: int, ret: int) -> int:
        if clock_id == 0:
            now = time.time_ns()
        elif clock_id == 1:
            now = time.monotonic_ns()
        elif clock_id in (2, 3):
            now = time.process_time_ns()
        else:
            return WasiErrno.INVAL
        vm.write(ret, pack_u64(now))
        return WasiErrno.SUCCESS

    def clock_res_get(clock_id: int, ret: int) -> int:
        if clock_id > 3:
            return WasiErrno.INVAL
        vm.write(ret, pack_u64(1000))
        return WasiErrno.SUCCESS

    def random_get(buf: int, size: int) -> int:
        if size > MAX_RANDOM:
            return WasiErrno.INVAL
        vm.write(buf, os.urandom(size))
        return WasiErrno.SUCCESS

    def sizes_get(count_ptr: int, size_ptr: int) -> int:
        vm.check_out(count_ptr, size_ptr)
        vm.write_u32(count_ptr, 0)
        vm.write_u32(size_ptr, 0)
        return WasiErrno.SUCCESS

    def empty_get(_ptrs: int, _buf: int) -> int:
        return WasiErrno.SUCCESS

    def proc_exit(code: int) -> None:
        raise ProcExit(code)

    def fd_prestat_get(fd: int, ret: int) -> int:
        # no preopened directories; EBADF ends the guest's scan (Go loops otherwise)
        return WasiErrno.BADF

    def fd_prestat_dir_name(fd: int, p: int, n: int) -> int:
        return WasiErrno.BADF

    def fd_fdstat_get(fd: int, ret: int) -> int:
        if fd > 2:
            return WasiErrno.BADF
        rights = _RIGHT_FD_READ if fd == 0 else _RIGHT_FD_WRITE
        # fdstat: u8 filetype, pad, u16 flags, pad, u64 rights_base, u64 rights_inheriting
        vm.write(ret, struct.pack("<BxHxxxxQQ", _FILETYPE_CHARACTER_DEVICE, 0, rights, 0))
        return WasiErrno.SUCCESS

    def fd_fdstat_set_flags(fd: int, _flags: int) -> int:
        return WasiErrno.SUCCESS if fd <= 2 else WasiErrno.BADF

    def fd_close(fd: int) -> int:
        return WasiErrno.SUCCESS if fd <= 2 else WasiErrno.BADF

    def poll_oneoff(_in: int, _out: int, _n: int, ret: int) -> int:
        vm.write(ret, pack_u32(0))
        return WasiErrno.SUCCESS

    def sched_yield() -> int:
        return WasiErrno.SUCCESS

    g = _guarded
    return {
        "fd_write": ((I, I, I, I), (I,), g(fd_write)),
        "fd_read": ((I, I, I, I), (I,), g(fd_read)),
        "clock_time_get": ((I, L, I), (I,), g(clock_time_get)),
        "clock_res_get": ((I, I), (I,), g(clock_res_get)),
        "random_get": ((I, I), (I,), g(random_get)),
        "environ_sizes_get": ((I, I), (I,), g(sizes_get)),
        "environ_get": ((I, I), (I,), g(empty_get)),
        "args_sizes_get": ((I, I), (I,), g(sizes_get)),
        "args_get": ((I, I), (I,), g(empty_get)),
        "proc_exit": ((I,), (), proc_exit),
        "fd_prestat_get": ((I, I), (I,), g(fd_prestat_get)),
        "fd_prestat_dir_name": ((I, I, I), (I,), g(fd_prestat_dir_name)),
        "fd_fdstat_get": ((I, I), (I,), g(fd_fdstat_get)),
        "fd_fdstat_set_flags": ((I, I), (I,), g(fd_fdstat_set_flags)),
        "fd_close": ((I,), (I,), g(fd_close)),
        "poll_oneoff": ((I, I, I, I), (I,), g(poll_oneoff)),
        "sched_yield": ((), (I,), g(sched_yield)),
    }
