"""PROXY protocol parser: headers fed whole, byte by byte, and with the request behind them."""

from __future__ import annotations

import struct

import pytest

from edge.http.proxy_protocol import (
    TLV_ALPN,
    TLV_AUTHORITY,
    TLV_AWS,
    TLV_NOOP,
    TLV_UNIQUE_ID,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderReader,
    ProxyProtocolError,
    build_v1,
    build_v2,
    crc32c,
)

REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def feed_whole(version: int, data: bytes) -> tuple[ProxyHeader, bytes]:
    r = ProxyHeaderReader(version).feed(data)
    assert r is not None
    return r


def feed_bytewise(version: int, data: bytes) -> tuple[ProxyHeader, bytes]:
    reader = ProxyHeaderReader(version)
    for i in range(len(data)):
        r = reader.feed(data[i : i + 1])
        if r is not None:
            header, rest = r
            return header, rest + data[i + 1 :]
    raise AssertionError("header never completed")


@pytest.mark.parametrize("feed", [feed_whole, feed_bytewise])
@pytest.mark.parametrize(
    ("version", "raw", "src", "sport", "dst", "dport"),
    [
        (1, build_v1("203.0.113.7", "10.0.0.1", 51234, 443), "203.0.113.7", 51234, "10.0.0.1", 443),
        (1, b"PROXY TCP6 2001:db8::1 ::2 1 65535\r\n", "2001:db8::1", 1, "::2", 65535),
        (2, build_v2("198.51.100.9", "10.0.0.2", 40000, 80), "198.51.100.9", 40000, "10.0.0.2", 80),
        (2, build_v2("2001:db8::7", "2001:db8::8", 5, 6), "2001:db8::7", 5, "2001:db8::8", 6),
    ],
)
def test_valid_headers(feed, version, raw, src, sport, dst, dport) -> None:
    header, rest = feed(version, raw + REQ)
    assert (header.src_addr, header.src_port, header.dst_addr, header.dst_port) == (
        src,
        sport,
        dst,
        dport,
    )
    assert header.proxied and header.version == version
    assert rest == REQ


def test_v1_unknown_keeps_peer() -> None:
    header, rest = feed_whole(1, b"PROXY UNKNOWN\r\n" + REQ)
    assert not header.proxied and rest == REQ


def test_v2_local_command_is_a_health_check() -> None:
    header, rest = feed_whole(2, build_v2(None, local=True) + REQ)
    assert not header.proxied and header.src_addr == "" and rest == REQ


def test_v2_tlvs_are_decoded() -> None:
    raw = build_v2(
        "192.0.2.1",
        "10.1.1.1",
        1000,
        443,
        [
            (TLV_ALPN, b"http/1.1"),
            (TLV_AUTHORITY, b"api.example.com"),
            (TLV_UNIQUE_ID, b"\x01\x02\xff"),
            (TLV_AWS, b"\x01vpce-08d2bf15fac5001c9"),
            (TLV_NOOP, b"\0\0\0"),
            (0xF1, b"\xab"),
        ],
        with_crc=True,
    )
    header, _ = feed_whole(2, raw)
    assert header.tlvs == {
        "alpn": "http/1.1",
        "authority": "api.example.com",
        "unique_id": "0102ff",
        "aws_vpce_id": "vpce-08d2bf15fac5001c9",
        "tlv_0xf1": "ab",
    }


def test_crc32c_known_vector() -> None:
    # RFC 3720 B.4: 32 bytes of zeros
    assert crc32c(b"\0" * 32) == 0x8A9136AA


def _corrupt_crc(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 0xFF])


@pytest.mark.parametrize(
    ("version", "raw", "reason"),
    [
        (1, b"GET / HTTP/1.1\r\n\r\n", "does not start"),
        (1, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "longer than 107|malformed"),
        (1, b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "malformed"),
        (1, b"PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n", "invalid address"),
        (1, b"PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n", "family"),
        (1, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "invalid port"),
        (1, b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "invalid port"),
        (1, b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol"),
        (1, b"PROXY TCP4 " + b"1" * 120 + b"\r\n", "longer than 107"),
        (1, b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "malformed|invalid"),
        (2, b"\r\n\r\n\x00\r\nQUIX\n" + b"\x21\x11\x00\x0c" + b"\0" * 12, "signature"),
        (2, V2_SIGNATURE + b"\x31\x11\x00\x0c" + b"\0" * 12, "version 3"),
        (2, V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\0" * 12, "unknown command"),
        (2, V2_SIGNATURE + b"\x21\x41\x00\x0c" + b"\0" * 12, "unknown family"),
        (2, V2_SIGNATURE + b"\x21\x12\x00\x0c" + b"\0" * 12, "not for a stream"),
        (2, V2_SIGNATURE + b"\x21\x21\x00\x0c" + b"\0" * 12, "truncated"),
        (2, V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", 4000) + b"\0" * 4000, "too large"),
        (2, V2_SIGNATURE + b"\x21\x11\x00\x0e" + b"\0" * 12 + b"\x01\x00", "TLV truncated"),
        (2, V2_SIGNATURE + b"\x21\x11\x00\x10" + b"\0" * 12 + b"\x01\x00\x05ab", "TLV truncated"),
        (2, _corrupt_crc(build_v2("192.0.2.1", "10.0.0.1", 1, 2, with_crc=True)), "CRC32C"),
        (2, build_v2("192.0.2.1", "10.0.0.1", 1, 2, [(TLV_AUTHORITY, b"a\r\nb")]), "control"),
        (2, build_v1("1.2.3.4", "5.6.7.8", 1, 2), "signature"),
        (1, build_v2("1.2.3.4", "5.6.7.8", 1, 2), "does not start"),
    ],
)
def test_malformed_headers_are_refused(version: int, raw: bytes, reason: str) -> None:
    for feed in (feed_whole, feed_bytewise):
        with pytest.raises(ProxyProtocolError, match=reason):
            feed(version, raw + REQ)


def test_eof_before_header_is_an_error() -> None:
    reader = ProxyHeaderReader(2)
    assert reader.feed(V2_SIGNATURE[:5]) is None
    with pytest.raises(ProxyProtocolError, match="closed"):
        reader.feed(b"")
