"""edge.wasm.abi: pair serialization, property paths and values, buffer arithmetic."""

from __future__ import annotations

import struct

import pytest

from edge.wasm.abi import (
    MAX_MAP_PAIRS,
    AbiError,
    Status,
    deserialize_pairs,
    encode_property,
    serialize_pairs,
    slice_buffer,
    splice_buffer,
    split_property_path,
)

SPEC_EXAMPLE = bytes.fromhex("0200000001000000010000000100000002000000610031006200323200")


@pytest.mark.parametrize(
    ("pairs", "wire"),
    [
        ([], b"\0\0\0\0"),
        ([(b"a", b"1"), (b"b", b"22")], SPEC_EXAMPLE),
        ([(b"", b"")], struct.pack("<III", 1, 0, 0) + b"\0\0"),
        ([(b":path", b"/x?y=1")], struct.pack("<III", 1, 5, 6) + b":path\0/x?y=1\0"),
    ],
)
def test_pairs_round_trip(pairs: list[tuple[bytes, bytes]], wire: bytes) -> None:
    assert serialize_pairs(pairs) == wire
    assert deserialize_pairs(wire) == pairs


@pytest.mark.parametrize("empty", [b"", b"\0"])
def test_empty_map_forms(empty: bytes) -> None:
    assert deserialize_pairs(empty) == []


@pytest.mark.parametrize(
    "bad",
    [
        b"\1\0",  # shorter than the count
        struct.pack("<I", 1),  # count without its length table
        struct.pack("<III", 1, 5, 1) + b"ab\0",  # truncated key
        struct.pack("<III", 1, 0xFFFFFFFF, 0xFFFFFFFF) + b"\0\0",  # huge lengths
        struct.pack("<I", MAX_MAP_PAIRS + 1) + b"\0" * 8 * (MAX_MAP_PAIRS + 1),
        struct.pack("<I", 0x10000000),  # a count that would make the host allocate
    ],
)
def test_malformed_pairs_are_bad_argument(bad: bytes) -> None:
    with pytest.raises(AbiError) as ei:
        deserialize_pairs(bad)
    assert ei.value.status is Status.BAD_ARGUMENT


def test_pairs_fed_as_memoryview() -> None:
    assert deserialize_pairs(memoryview(SPEC_EXAMPLE)) == [(b"a", b"1"), (b"b", b"22")]


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b"request\0path", ("request", "path")),
        (b"plugin_root_id", ("plugin_root_id",)),  # AssemblyScript: raw string
        (b"request.headers", ("request", "headers")),
        (b"source\0address\0", ("source", "address")),  # tolerated trailing NUL
        (b"request\0headers\0x.y", ("request", "headers", "x.y")),
    ],
)
def test_property_paths(raw: bytes, path: tuple[str, ...]) -> None:
    assert split_property_path(raw) == path


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("abc", b"abc"),
        (b"\xff", b"\xff"),
        (8080, struct.pack("<q", 8080)),
        (-1, b"\xff" * 8),
        (True, b"\1"),
        (False, b"\0"),
        (None, b""),
        ({"a": "1"}, serialize_pairs([(b"a", b"1")])),
        ([("k", "v"), ("k", "w")], serialize_pairs([(b"k", b"v"), (b"k", b"w")])),
    ],
)
def test_property_values_envoy_style(value: object, wire: bytes) -> None:
    assert encode_property(value) == wire  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("length", "start", "size", "expect"),
    [
        (10, 0, 10, (0, 10)),
        (10, 0, 0xFFFFFFFF, (0, 10)),  # Rust SDK: "everything" must not wrap
        (10, 0xFFFFFFFF, 0xFFFFFFFF, (10, 10)),
        (10, 4, 3, (4, 7)),
        (10, 12, 5, (10, 10)),
        (0, 0, 0, (0, 0)),
    ],
)
def test_slice_buffer(length: int, start: int, size: int, expect: tuple[int, int]) -> None:
    assert slice_buffer(length, start, size) == expect


@pytest.mark.parametrize(
    ("start", "size", "new", "expect"),
    [
        (0, 0, b"<", b"<hello"),  # prepend
        (5, 0, b">", b"hello>"),  # append at the end
        (99, 0, b">", b"hello>"),  # start past the end appends
        (0, 5, b"bye", b"bye"),  # replace whole
        (0, 0xFFFFFFFF, b"x", b"x"),
        (1, 3, b"EL", b"hELo"),
    ],
)
def test_splice_buffer(start: int, size: int, new: bytes, expect: bytes) -> None:
    assert splice_buffer(b"hello", start, size, new) == expect
