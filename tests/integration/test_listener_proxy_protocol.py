"""PROXY protocol on a listener: a real HAProxy in front (v1 and v2), raw sockets for
hostile headers, listener-level source restriction. The client connects from 127.0.0.5
so its address differs from HAProxy's (127.0.0.1)."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.http.proxy_protocol import TLV_AWS, V2_SIGNATURE, build_v1, build_v2
from tests.support.haproxy import haproxy
from tests.support.procs import EdgeProcess, free_port, http_get, wait_until
from tests.support.proxy import access_lines
from tests.support.upstream import Upstream

CLIENT = "127.0.0.5"
REQ = b"GET /echo HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n"


def _config(up: Upstream) -> dict:
    return {
        "routes": [
            {
                "id": "echo",
                "uri": "/*",
                "upstream": {"nodes": [{"host": "127.0.0.1", "port": up.port, "weight": 1}]},
                "plugins": {
                    "proxy-rewrite": {
                        "headers": {"set": {"X-VPCE": "$proxy_protocol_tlv_aws_vpce_id"}}
                    }
                },
            }
        ]
    }


@pytest.fixture(scope="module")
def up() -> Iterator[Upstream]:
    with Upstream("pp") as u:
        yield u


@pytest.fixture(scope="module")
def edge(up: Upstream) -> Iterator[EdgeProcess]:
    p = EdgeProcess(_config(up))
    v1_port, v2_port, strict_port, cdn_port = free_port(), free_port(), free_port(), free_port()
    p.node = {
        "listeners": [
            {"address": f"127.0.0.1:{p.port}"},
            {
                "address": f"127.0.0.1:{v1_port}",
                "proxy_protocol": "v1",
                "trusted_proxies": ["127.0.0.1/32"],
            },
            {
                "address": f"127.0.0.1:{v2_port}",
                "proxy_protocol": "v2",
                "trusted_proxies": ["127.0.0.1/32"],
            },
            # trusts a peer that is never the test's: every connection is refused
            {
                "address": f"127.0.0.1:{strict_port}",
                "proxy_protocol": "v2",
                "trusted_proxies": ["127.0.0.9/32"],
            },
            # only clients (as the PROXY header names them) from the "CDN" range
            {
                "address": f"127.0.0.1:{cdn_port}",
                "proxy_protocol": "v2",
                "trusted_proxies": ["127.0.0.1/32"],
                "ip_restriction": {"whitelist": ["127.0.0.64/26"]},
            },
        ]
    }
    p.ports = {"v1": v1_port, "v2": v2_port, "strict": strict_port, "cdn": cdn_port}  # type: ignore[attr-defined]
    with p:
        yield p


def _send(port: int, data: bytes, source: str = "127.0.0.1") -> bytes:
    """Send ``data`` from ``source`` and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
        return out


def _echo(raw: bytes) -> dict:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), raw[:200]
    return json.loads(body)


def _header(echo: dict, name: str) -> str | None:
    for k, v in echo["headers"]:
        if k.lower() == name:
            return v.strip()  # the echo upstream keeps the raw field value
    return None


@pytest.mark.parametrize(("send_proxy", "key"), [("send-proxy", "v1"), ("send-proxy-v2", "v2")])
def test_haproxy_passes_the_client_address(edge: EdgeProcess, send_proxy: str, key: str) -> None:
    with haproxy(edge.ports[key], send_proxy) as hp:  # type: ignore[attr-defined]
        echo = _echo(_send(hp, REQ, source=CLIENT))
    assert _header(echo, "x-real-ip") == CLIENT
    assert _header(echo, "x-forwarded-for") == CLIENT
    wait_until(
        lambda: any(a.get("client") == CLIENT for a in access_lines(edge)), 10, "access log line"
    )


def test_haproxy_v2_unique_id_tlv_reaches_variables(edge: EdgeProcess) -> None:
    opts = "send-proxy-v2 proxy-v2-options unique-id"
    with haproxy(edge.ports["v2"], opts) as hp:  # type: ignore[attr-defined]
        echo = _echo(_send(hp, REQ, source=CLIENT))
    assert _header(echo, "x-real-ip") == CLIENT


def test_tlvs_are_exposed_as_variables(edge: EdgeProcess) -> None:
    header = build_v2(CLIENT, "10.0.0.1", 4242, 443, [(TLV_AWS, b"\x01vpce-0abc123")])
    echo = _echo(_send(edge.ports["v2"], header + REQ))  # type: ignore[attr-defined]
    assert _header(echo, "x-vpce") == "vpce-0abc123"
    assert _header(echo, "x-forwarded-port") == "443"


def test_v2_local_health_check_is_served_as_the_peer(edge: EdgeProcess) -> None:
    echo = _echo(_send(edge.ports["v2"], build_v2(None, local=True) + REQ))  # type: ignore[attr-defined]
    assert _header(echo, "x-real-ip") == "127.0.0.1"


def test_v1_raw_header(edge: EdgeProcess) -> None:
    raw = build_v1("192.0.2.10", "10.0.0.1", 5555, 80) + REQ
    echo = _echo(_send(edge.ports["v1"], raw))  # type: ignore[attr-defined]
    assert _header(echo, "x-real-ip") == "192.0.2.10"


def _refused(raw: bytes) -> bool:
    return raw == b""


BAD_V2 = [
    b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + b"\0" * 12,  # bad signature
    V2_SIGNATURE + b"\x21\x11\x00\x0c" + b"\0" * 4,  # truncated, then EOF
    V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", 60000) + b"\0" * 3000,  # oversized
    V2_SIGNATURE + b"\x21\x41\x00\x0c" + b"\0" * 12,  # wrong family
    REQ,  # no header at all
]


@pytest.mark.parametrize(
    "raw", BAD_V2, ids=["signature", "truncated", "oversized", "family", "none"]
)
def test_malformed_v2_is_refused_and_others_keep_working(edge: EdgeProcess, raw: bytes) -> None:
    port = edge.ports["v2"]  # type: ignore[attr-defined]
    # a healthy connection opened before the bad one stays usable after it
    with socket.create_connection(("127.0.0.1", port), timeout=10) as good:
        good.sendall(build_v2(CLIENT, "10.0.0.1", 1, 80))
        if raw is BAD_V2[1]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
                assert s.recv(100) == b""
        else:
            assert _refused(_send(port, raw))
        good.sendall(REQ)
        data = b""
        while chunk := good.recv(65536):
            data += chunk
    assert _header(_echo(data), "x-real-ip") == CLIENT


@pytest.mark.parametrize(
    "raw",
    [
        b"PROXY TCP4 " + b"1" * 100 + b"\r\n",  # over 107 bytes
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        REQ,
    ],
    ids=["long", "fields", "protocol", "none"],
)
def test_malformed_v1_is_refused(edge: EdgeProcess, raw: bytes) -> None:
    assert _refused(_send(edge.ports["v1"], raw + REQ))  # type: ignore[attr-defined]


def test_untrusted_peer_is_refused_even_with_a_valid_header(edge: EdgeProcess) -> None:
    raw = build_v2(CLIENT, "10.0.0.1", 1, 80) + REQ
    assert _refused(_send(edge.ports["strict"], raw))  # type: ignore[attr-defined]
    # a trusted listener accepts the same bytes, but not from an untrusted source address
    assert _refused(_send(edge.ports["v2"], raw, source="127.0.0.3"))  # type: ignore[attr-defined]


def test_listener_ip_restriction_uses_the_proxy_address(edge: EdgeProcess) -> None:
    port = edge.ports["cdn"]  # type: ignore[attr-defined]
    inside = _echo(_send(port, build_v2("127.0.0.70", "10.0.0.1", 1, 80) + REQ))
    assert _header(inside, "x-real-ip") == "127.0.0.70"
    assert _refused(_send(port, build_v2("127.0.0.5", "10.0.0.1", 1, 80) + REQ))


def test_plain_listener_is_unaffected(edge: EdgeProcess) -> None:
    assert http_get(edge.url + "/x")[0] == 200


def test_refusals_are_counted(edge: EdgeProcess) -> None:
    assert _refused(_send(edge.ports["strict"], REQ))  # type: ignore[attr-defined]
    assert _refused(_send(edge.ports["v2"], REQ))  # type: ignore[attr-defined]

    def counts() -> dict[str, float]:
        text = http_get(edge.admin_url + "/metrics")[1].decode()
        out: dict[str, float] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == "edge_listener_refused_total":
                    out[s.labels["reason"]] = out.get(s.labels["reason"], 0) + s.value
        return out

    wait_until(
        lambda: (
            counts().get("untrusted_proxy", 0) >= 1
            and counts().get("proxy_protocol_malformed", 0) >= 1
        ),
        10,
        "refusal counters",
    )
