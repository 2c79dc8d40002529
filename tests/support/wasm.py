"""Helpers for the WASM host tests: corpus and WAT modules, requests, VMs, a probe.

The probe module (tests/wasm_modules/probe.wat) exports ``h.<module>.<name>`` for
every host function, so a test calls any hostcall with any arguments, including
hostile pointers, exactly as a guest would.
"""

from __future__ import annotations

import hashlib
import struct
import time
from pathlib import Path
from typing import Any

import wasmtime

from edge.context import ConnInfo, Request, Response
from edge.http.headers import Headers
from edge.wasm.engine import load_module
from edge.wasm.fastcall import I32, I64, GuestFunc
from edge.wasm.runtime import PluginRuntime
from edge.wasm.vm import PluginVM, VmSpec

CORPUS = Path("/work/shared/wasm-corpus")
MODULES = Path(__file__).resolve().parent.parent / "wasm_modules"

_wat_cache: dict[str, bytes] = {}


def wat(name: str) -> bytes:
    """A module of tests/wasm_modules, compiled from its .wat text (cached per run)."""
    if name not in _wat_cache:
        _wat_cache[name] = wasmtime.wat2wasm((MODULES / f"{name}.wat").read_text())
    return _wat_cache[name]


def corpus(name: str) -> bytes:
    return (CORPUS / f"{name}.wasm").read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def module(data: bytes, cache_dir: str | None = None) -> wasmtime.Module:
    return load_module(data, None, cache_dir)[0]


def make_request(
    method: str = "GET",
    uri: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
) -> Request:
    h = Headers(headers if headers is not None else [("Host", "example.com")])
    conn = ConnInfo("127.0.0.1", 40000, "127.0.0.1", 8080)
    req = Request(method, uri, "1.1", h, conn, time.monotonic(), time.time())
    req.request_id = "rid-1"
    if body is not None:
        req.content_length = len(body)
        h.set("Content-Length", str(len(body)))

        async def read_body(limit: int) -> bytes:
            from edge.errors import ClientError

            if len(body) > limit:
                raise ClientError("request body too large", 413)
            return body

        req.read_body = read_body
    return req


def make_response(status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, Headers(headers or [("Content-Type", "text/plain")]))


def spec(**kw: Any) -> VmSpec:
    kw.setdefault("plugin", "test/plugin")
    kw.setdefault("tenant", "t1")
    return VmSpec(**kw)


def make_vm(data: bytes, **kw: Any) -> PluginVM:
    return PluginVM(spec(**kw), module(data))


def make_runtime(data: bytes, transport: Any = None, **kw: Any) -> PluginRuntime:
    return PluginRuntime(spec(**kw), module(data), transport=transport)


class Probe:
    """Call the probe module's host function forwarders with raw arguments."""

    SCRATCH = 4096  # first page, below the allocator's heap (second page)

    def __init__(self, **kw: Any) -> None:
        self.vm = make_vm(wat("probe"), **kw)
        self.root = self.vm.create_root("probe_root", b"plugin-conf")
        self._funcs: dict[str, GuestFunc] = {}
        self._exports = self.vm.instance.exports(self.vm.store)
        self._next = self.SCRATCH

    def func(self, name: str) -> GuestFunc:
        f = self._funcs.get(name)
        if f is None:
            raw = self._exports[name]
            ty = raw.type(self.vm.store)
            f = GuestFunc(
                self.vm.fs,
                raw,
                name,
                [str(p) for p in ty.params],
                [str(r) for r in ty.results],
            )
            self._funcs[name] = f
        return f

    def call(self, name: str, *args: int, module: str = "env") -> int | None:
        return self.func(f"h.{module}.{name}")(*args)

    def put(self, data: bytes) -> tuple[int, int]:
        """Copy ``data`` into scratch memory; returns (ptr, len)."""
        p = self._next
        self.vm.write(p, data)
        self._next += (len(data) + 7) & ~7
        return p, len(data)

    def out(self, n: int = 1) -> list[int]:
        """``n`` zeroed u32 out-parameter slots."""
        ptrs = []
        for _ in range(n):
            p, _ = self.put(b"\0" * 8)
            ptrs.append(p)
        return ptrs

    def u32(self, ptr: int) -> int:
        return struct.unpack("<I", self.vm.read(ptr, 4))[0]

    def u64(self, ptr: int) -> int:
        return struct.unpack("<Q", self.vm.read(ptr, 8))[0]

    def returned(self, ptr_slot: int, len_slot: int) -> bytes:
        p, n = self.u32(ptr_slot), self.u32(len_slot)
        return self.vm.read(p, n) if n else b""

    def stream(self, req: Request | None = None) -> Any:
        st = self.vm.new_stream(self.root, req or make_request())
        return st


__all__ = ["I32", "I64", "Probe", "corpus", "make_request", "make_vm", "wat"]
