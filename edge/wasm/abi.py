"""proxy-wasm ABI 0.2.1 marshalling: enums, header maps, property paths and values,
buffer slicing. Sans-IO: bytes in, bytes out, no wasmtime.

Sources: proxy-wasm/spec abi-versions/v0.2.1, proxy-wasm-cpp-host ``pairs_util.cc``
and ``context.cc``, the Rust SDK ``hostcalls.rs``; see docs/wasm.md.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from enum import IntEnum


class Status(IntEnum):
    """proxy_status_t (5, 9 and 11 come from the C++ SDK, not the spec)."""

    OK = 0
    NOT_FOUND = 1
    BAD_ARGUMENT = 2
    SERIALIZATION_FAILURE = 3
    PARSE_FAILURE = 4
    BAD_EXPRESSION = 5
    INVALID_MEMORY_ACCESS = 6
    EMPTY = 7
    CAS_MISMATCH = 8
    RESULT_MISMATCH = 9
    INTERNAL_FAILURE = 10
    BROKEN_CONNECTION = 11
    UNIMPLEMENTED = 12


class Action(IntEnum):
    CONTINUE = 0
    PAUSE = 1


class BufferType(IntEnum):
    HTTP_REQUEST_BODY = 0
    HTTP_RESPONSE_BODY = 1
    DOWNSTREAM_DATA = 2
    UPSTREAM_DATA = 3
    HTTP_CALL_RESPONSE_BODY = 4
    GRPC_CALL_MESSAGE = 5
    VM_CONFIGURATION = 6
    PLUGIN_CONFIGURATION = 7
    FOREIGN_FUNCTION_ARGUMENTS = 8


class MapType(IntEnum):
    HTTP_REQUEST_HEADERS = 0
    HTTP_REQUEST_TRAILERS = 1
    HTTP_RESPONSE_HEADERS = 2
    HTTP_RESPONSE_TRAILERS = 3
    GRPC_CALL_INITIAL_METADATA = 4
    GRPC_CALL_TRAILING_METADATA = 5
    HTTP_CALL_RESPONSE_HEADERS = 6
    HTTP_CALL_RESPONSE_TRAILERS = 7


class StreamType(IntEnum):
    HTTP_REQUEST = 0
    HTTP_RESPONSE = 1
    DOWNSTREAM = 2
    UPSTREAM = 3


class LogLevel(IntEnum):
    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4
    CRITICAL = 5


class MetricType(IntEnum):
    COUNTER = 0
    GAUGE = 1
    HISTOGRAM = 2


class WasiErrno(IntEnum):
    SUCCESS = 0
    BADF = 8
    FAULT = 21
    INVAL = 28
    NOSYS = 52
    NOTSUP = 58


# cpp-host limits.h: a header map from a guest is refused beyond these
MAX_MAP_BYTES = 1 << 20
MAX_MAP_PAIRS = 1024

U32_MAX = 0xFFFFFFFF

_u32 = struct.Struct("<I")
_u64 = struct.Struct("<Q")
_i64 = struct.Struct("<q")


class AbiError(ValueError):
    """A guest handed the host malformed data; ``status`` is what the hostcall returns."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status


Pairs = list[tuple[bytes, bytes]]


def serialize_pairs(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """u32 count; per pair u32 key_len, u32 val_len; then each key NUL value NUL."""
    items = list(pairs)
    head = [_u32.pack(len(items))]
    body: list[bytes] = []
    for k, v in items:
        head.append(_u32.pack(len(k)))
        head.append(_u32.pack(len(v)))
        body.append(k)
        body.append(b"\0")
        body.append(v)
        body.append(b"\0")
    return b"".join(head) + b"".join(body)


def deserialize_pairs(data: bytes | memoryview) -> Pairs:
    """Parse the pair format; empty input (or a lone NUL) is an empty map.

    Raises ``AbiError(BAD_ARGUMENT)`` for truncated or oversized input: a guest must
    never make the host read past what it passed.
    """
    n = len(data)
    if n == 0 or (n == 1 and data[0] == 0):
        return []
    if n > MAX_MAP_BYTES:
        raise AbiError(Status.BAD_ARGUMENT, f"header map of {n} bytes exceeds {MAX_MAP_BYTES}")
    if n < 4:
        raise AbiError(Status.BAD_ARGUMENT, "header map shorter than its count")
    data = bytes(data)
    (count,) = _u32.unpack_from(data, 0)
    if count > MAX_MAP_PAIRS:
        raise AbiError(Status.BAD_ARGUMENT, f"header map of {count} pairs exceeds {MAX_MAP_PAIRS}")
    pos = 4 + 8 * count
    if pos > n:
        raise AbiError(Status.BAD_ARGUMENT, "header map truncated in its length table")
    out: Pairs = []
    for i in range(count):
        kl, vl = struct.unpack_from("<II", data, 4 + 8 * i)
        end = pos + kl + 1 + vl + 1
        if end > n:
            raise AbiError(Status.BAD_ARGUMENT, f"header map truncated in pair {i}")
        out.append((data[pos : pos + kl], data[pos + kl + 1 : pos + kl + 1 + vl]))
        pos = end
    return out


def split_property_path(raw: bytes) -> tuple[str, ...]:
    """Segments joined by NUL, no trailing NUL (Rust/Go SDKs); a dotted plain
    string (AssemblyScript passes ``"plugin_root_id"``) is split on dots.

    A trailing NUL is tolerated because some C++ builds send one.
    """
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    text = raw.decode("utf-8", "replace")
    if "\0" in text:
        return tuple(text.split("\0"))
    return tuple(text.split("."))


PropertyValue = str | bytes | int | bool | dict[str, str] | list[tuple[str, str]] | None


def encode_property(value: PropertyValue) -> bytes:
    """Envoy-style: strings raw, ints 8-byte LE, bools 1 byte, maps in pair format."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\1" if value else b"\0"
    if isinstance(value, int):
        return _i64.pack(value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    pairs = value.items() if isinstance(value, dict) else value
    return serialize_pairs((k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs)


def slice_buffer(length: int, start: int, max_size: int) -> tuple[int, int]:
    """``proxy_get_buffer_bytes``: clamp start and size to the buffer (as cpp-host).

    Arguments are u32 from the guest; arithmetic is unbounded Python ints, so
    ``max_size = 0xFFFFFFFF`` (Rust SDK asks for "everything") cannot wrap.
    Returns ``(start, end)``; an empty slice means OK with ptr=0, len=0.
    """
    if start > length:
        start = length
    end = start + max_size
    if end > length:
        end = length
    return start, end


def splice_buffer(data: bytes, start: int, size: int, new: bytes) -> bytes:
    """``proxy_set_buffer_bytes``: replace ``size`` bytes at ``start`` with ``new``.

    ``start=0, size=0`` prepends; ``start >= len`` appends; ``start=0, size >= len``
    replaces the whole buffer (the SDKs' ``set_*_body(0, len, ...)``).
    """
    length = len(data)
    if start >= length:
        return data + new
    end = start + size
    if end > length:
        end = length
    return data[:start] + new + data[end:]


def pack_u32(v: int) -> bytes:
    return _u32.pack(v & U32_MAX)


def pack_u64(v: int) -> bytes:
    return _u64.pack(v & 0xFFFFFFFFFFFFFFFF)
