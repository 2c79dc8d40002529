"""PROXY protocol v1 and v2 (haproxy.org/download/2.9/doc/proxy-protocol.txt), sans-IO.

A listener configured for one version requires that version's header first on every
connection: nothing is guessed, and a connection that does not start with a valid header
is refused. ``ProxyHeaderReader.feed(bytes)`` returns ``None`` until a whole header has
arrived, then a ``ProxyHeader`` and the bytes that followed it (the start of the HTTP
request, or a TLS ClientHello).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from edge.errors import ClientError

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
# The spec bounds a v1 line at 107 bytes including CRLF ("PROXY UNKNOWN" with two full
# IPv6 addresses and ports); anything longer is not a PROXY header.
V1_MAX_LINE = 107
# v2 allows up to 64 KiB of TLVs, but load balancers send well under 1 KiB (AWS NLB with a
# VPC endpoint id is ~80 bytes). Refusing large headers bounds what an untrusted peer can
# make us buffer before the first HTTP byte.
V2_MAX_PAYLOAD = 2048

# v2 TLV types (section 2.2) and the vendor types cloud load balancers use
TLV_ALPN = 0x01
TLV_AUTHORITY = 0x02
TLV_CRC32C = 0x03
TLV_NOOP = 0x04
TLV_UNIQUE_ID = 0x05
TLV_SSL = 0x20
TLV_NETNS = 0x30
TLV_AWS = 0xEA  # subtype 0x01: VPC endpoint id
TLV_AZURE = 0xEE  # subtype 0x01: private link LINKID (u32 LE)
TLV_GCP = 0xE0  # Private Service Connect connection id (u64 BE)

_AF_INET, _AF_INET6, _AF_UNIX = 0x1, 0x2, 0x3


class ProxyProtocolError(ClientError):
    """The peer sent no PROXY header, a malformed one, or one we must not accept."""

    status = 400


@dataclass(slots=True)
class ProxyHeader:
    version: int
    # False for v2 LOCAL (a load balancer health check) and v1 UNKNOWN: keep the real peer
    proxied: bool
    src_addr: str = ""
    src_port: int = 0
    dst_addr: str = ""
    dst_port: int = 0
    # decoded TLVs by name: alpn, authority, unique_id (text, or hex if binary),
    # aws_vpce_id, gcp_psc_id, azure_linkid, ssl_version, ssl_cn, netns; unknown types
    # as "tlv_0xNN" (hex)
    tlvs: dict[str, str] = field(default_factory=dict)


class ProxyHeaderReader:
    """Accumulates the first bytes of a connection until a full header is parsed."""

    __slots__ = ("_buf", "version")

    def __init__(self, version: int) -> None:
        if version not in (1, 2):
            raise ValueError("PROXY protocol version must be 1 or 2")
        self.version = version
        self._buf = b""

    def feed(self, data: bytes) -> tuple[ProxyHeader, bytes] | None:
        if not data:
            raise ProxyProtocolError("connection closed before a complete PROXY header")
        self._buf += data
        if self.version == 1:
            return self._v1()
        return self._v2()

    def _v1(self) -> tuple[ProxyHeader, bytes] | None:
        buf = self._buf
        n = min(len(buf), len(V1_PREFIX))
        if buf[:n] != V1_PREFIX[:n]:
            raise ProxyProtocolError("connection does not start with a PROXY v1 header")
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) >= V1_MAX_LINE:
                raise ProxyProtocolError("PROXY v1 header longer than 107 bytes")
            return None
        if end + 2 > V1_MAX_LINE:
            raise ProxyProtocolError("PROXY v1 header longer than 107 bytes")
        return parse_v1(buf[:end]), buf[end + 2 :]

    def _v2(self) -> tuple[ProxyHeader, bytes] | None:
        buf = self._buf
        n = min(len(buf), 12)
        if buf[:n] != V2_SIGNATURE[:n]:
            raise ProxyProtocolError("connection does not start with a PROXY v2 signature")
        if len(buf) < 16:
            return None
        length = struct.unpack_from("!H", buf, 14)[0]
        if length > V2_MAX_PAYLOAD:
            raise ProxyProtocolError(f"PROXY v2 header too large ({length} bytes)")
        if len(buf) < 16 + length:
            return None
        return parse_v2(buf[: 16 + length]), buf[16 + length :]


def _ip(text: str, version: int) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyProtocolError(f"PROXY v1 header has an invalid address {text[:40]!r}") from None
    if addr.version != version:
        raise ProxyProtocolError("PROXY v1 address does not match its protocol family")
    # the spec wants the canonical form; refuse leading zeros etc. rather than normalise
    if str(addr) != text:
        raise ProxyProtocolError(f"PROXY v1 address not in canonical form {text[:40]!r}")
    return text


def _port(text: str) -> int:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0") or len(text) > 5:
        raise ProxyProtocolError(f"PROXY v1 header has an invalid port {text[:10]!r}")
    port = int(text)
    if port > 65535:
        raise ProxyProtocolError(f"PROXY v1 header has an invalid port {text[:10]!r}")
    return port


def parse_v1(line: bytes) -> ProxyHeader:
    """Parse one v1 line without its CRLF."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError("PROXY v1 header is not ASCII") from None
    parts = text.split(" ")
    if len(parts) < 2 or parts[0] != "PROXY":
        raise ProxyProtocolError("malformed PROXY v1 header")
    proto = parts[1]
    if proto == "UNKNOWN":
        # the sender could not tell the addresses: keep the connection's own (section 2.1)
        return ProxyHeader(version=1, proxied=False)
    if proto not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"PROXY v1 header has an unknown protocol {proto[:10]!r}")
    if len(parts) != 6:
        raise ProxyProtocolError("malformed PROXY v1 header")
    family = 4 if proto == "TCP4" else 6
    return ProxyHeader(
        version=1,
        proxied=True,
        src_addr=_ip(parts[2], family),
        dst_addr=_ip(parts[3], family),
        src_port=_port(parts[4]),
        dst_port=_port(parts[5]),
    )


def parse_v2(header: bytes) -> ProxyHeader:
    """Parse a whole v2 header (signature, 4 fixed bytes and payload)."""
    ver_cmd, fam = header[12], header[13]
    if ver_cmd >> 4 != 2:
        raise ProxyProtocolError(f"PROXY v2 header has version {ver_cmd >> 4}")
    command = ver_cmd & 0xF
    if command not in (0, 1):
        raise ProxyProtocolError(f"PROXY v2 header has an unknown command {command}")
    payload = header[16:]
    family, transport = fam >> 4, fam & 0xF
    if family > _AF_UNIX or transport > 2:
        raise ProxyProtocolError(f"PROXY v2 header has an unknown family 0x{fam:02x}")
    if command == 0:
        # LOCAL: the LB talking for itself (health checks). Addresses, if any, are ignored.
        return ProxyHeader(version=2, proxied=False, tlvs=_tlvs(payload, _addr_len(family)))
    if transport != 1 and family != 0:
        raise ProxyProtocolError("PROXY v2 header is not for a stream connection")
    alen = _addr_len(family)
    if len(payload) < alen:
        raise ProxyProtocolError("PROXY v2 address block truncated")
    h = ProxyHeader(version=2, proxied=family in (_AF_INET, _AF_INET6))
    if family == _AF_INET:
        h.src_addr = str(ipaddress.IPv4Address(payload[0:4]))
        h.dst_addr = str(ipaddress.IPv4Address(payload[4:8]))
        h.src_port, h.dst_port = struct.unpack_from("!HH", payload, 8)
    elif family == _AF_INET6:
        h.src_addr = str(ipaddress.IPv6Address(payload[0:16]))
        h.dst_addr = str(ipaddress.IPv6Address(payload[16:32]))
        h.src_port, h.dst_port = struct.unpack_from("!HH", payload, 32)
    h.tlvs = _tlvs(payload, alen)
    if "crc32c" in h.tlvs:
        _check_crc(header, alen)
        del h.tlvs["crc32c"]
    return h


def _addr_len(family: int) -> int:
    return {0: 0, _AF_INET: 12, _AF_INET6: 36, _AF_UNIX: 216}[family]


def _tlvs(payload: bytes, start: int) -> dict[str, str]:
    out: dict[str, str] = {}
    i, end = start, len(payload)
    while i < end:
        if end - i < 3:
            raise ProxyProtocolError("PROXY v2 TLV truncated")
        t = payload[i]
        (n,) = struct.unpack_from("!H", payload, i + 1)
        v = payload[i + 3 : i + 3 + n]
        if len(v) != n:
            raise ProxyProtocolError("PROXY v2 TLV truncated")
        i += 3 + n
        _decode_tlv(t, v, out)
    return out


def _text(v: bytes) -> str:
    # TLV strings end up in logs, headers and WASM properties: keep them printable
    s = v.decode("utf-8", "replace")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in s):
        raise ProxyProtocolError("PROXY v2 TLV holds control characters")
    return s


def _decode_tlv(t: int, v: bytes, out: dict[str, str]) -> None:
    if t == TLV_ALPN:
        out["alpn"] = _text(v)
    elif t == TLV_AUTHORITY:
        out["authority"] = _text(v)
    elif t == TLV_CRC32C:
        if len(v) != 4:
            raise ProxyProtocolError("PROXY v2 CRC32C TLV has the wrong size")
        out["crc32c"] = v.hex()
    elif t == TLV_NOOP:
        pass
    elif t == TLV_UNIQUE_ID:
        if len(v) > 128:
            raise ProxyProtocolError("PROXY v2 unique id longer than 128 bytes")
        # HAProxy sends a printable id; binary ids (the spec allows them) are hex-encoded
        out["unique_id"] = v.decode() if v.isascii() and v.decode().isprintable() else v.hex()
    elif t == TLV_NETNS:
        out["netns"] = _text(v)
    elif t == TLV_AWS:
        if v[:1] == b"\x01":
            out["aws_vpce_id"] = _text(v[1:])
    elif t == TLV_GCP:
        if len(v) == 8:
            out["gcp_psc_id"] = str(int.from_bytes(v, "big"))
    elif t == TLV_AZURE:
        if v[:1] == b"\x01" and len(v) == 5:
            out["azure_linkid"] = str(int.from_bytes(v[1:], "little"))
    elif t == TLV_SSL:
        _decode_ssl(v, out)
    else:
        out[f"tlv_0x{t:02x}"] = v.hex()


def _decode_ssl(v: bytes, out: dict[str, str]) -> None:
    if len(v) < 5:
        raise ProxyProtocolError("PROXY v2 SSL TLV truncated")
    client, verify = v[0], struct.unpack_from("!I", v, 1)[0]
    out["ssl"] = "1" if client & 0x01 else "0"
    out["ssl_verified"] = "1" if (client & 0x01 and verify == 0) else "0"
    sub = _tlvs(v, 5)
    names = {"tlv_0x21": "ssl_version", "tlv_0x22": "ssl_cn", "tlv_0x23": "ssl_cipher"}
    for k, val in sub.items():
        if k in names:
            out[names[k]] = bytes.fromhex(val).decode("utf-8", "replace")


# CRC32C (Castagnoli), table-driven; only run when a header carries the TLV
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _check_crc(header: bytes, alen: int) -> None:
    # the checksum covers the whole header with the CRC value itself zeroed
    buf = bytearray(header)
    i = 16 + alen
    while i + 3 <= len(buf):
        t = buf[i]
        (n,) = struct.unpack_from("!H", buf, i + 1)
        if t == TLV_CRC32C:
            expected = struct.unpack_from("!I", buf, i + 3)[0]
            buf[i + 3 : i + 7] = b"\0\0\0\0"
            if crc32c(bytes(buf)) != expected:
                raise ProxyProtocolError("PROXY v2 CRC32C mismatch")
            return
        i += 3 + n


def build_v1(src: str, dst: str, sport: int, dport: int) -> bytes:
    """A v1 header (used by tests and by edge when it talks PROXY to a peer)."""
    fam = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def build_v2(
    src: str | None,
    dst: str | None = None,
    sport: int = 0,
    dport: int = 0,
    tlvs: list[tuple[int, bytes]] = (),  # type: ignore[assignment]
    *,
    local: bool = False,
    with_crc: bool = False,
) -> bytes:
    """A v2 header: PROXY over TCP/IPv4 or IPv6, or LOCAL when ``local`` or ``src`` is None."""
    if local or src is None:
        ver_cmd, fam, addr = 0x20, 0x00, b""
    else:
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst or src)
        fam = 0x11 if s.version == 4 else 0x21
        addr = s.packed + d.packed + struct.pack("!HH", sport, dport)
        ver_cmd = 0x21
    body = addr + b"".join(bytes([t]) + struct.pack("!H", len(v)) + v for t, v in tlvs)
    if with_crc:
        body += bytes([TLV_CRC32C]) + struct.pack("!H", 4) + b"\0\0\0\0"
    head = V2_SIGNATURE + bytes([ver_cmd, fam]) + struct.pack("!H", len(body))
    out = head + body
    if with_crc:
        out = out[:-4] + struct.pack("!I", crc32c(out))
    return out
