"""The recipes of docs/cdn.md, end to end: a load balancer's PROXY v2 header names a CDN
edge (a "CDN range" on loopback), the listener refuses sources outside the CDN ranges,
and real-ip takes the viewer's address from the CDN's header, which every later plugin,
the upstream and the access log then see."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from edge.http.proxy_protocol import build_v2
from tests.support.procs import EdgeProcess, free_port, wait_until
from tests.support.proxy import access_lines
from tests.support.upstream import Upstream

CDN_RANGE = "127.0.0.64/26"  # stands in for the Akamai / CloudFront / Cloudflare ranges
CDN_EDGE = "127.0.0.70"


def _route(rid: str, host: str, up: Upstream, plugins: dict) -> dict:
    return {
        "id": rid,
        "uri": "/*",
        "hosts": [host],
        "plugins": plugins,
        "upstream": {"nodes": [{"host": "127.0.0.1", "port": up.port, "weight": 1}]},
    }


def _real_ip(source: str) -> dict:
    return {"real-ip": {"source": source, "trusted_addresses": [CDN_RANGE]}}


@pytest.fixture(scope="module")
def edge() -> Iterator[EdgeProcess]:
    with Upstream("cdn") as up:
        config = {
            "routes": [
                _route("akamai", "akamai.test", up, _real_ip("http_true_client_ip")),
                _route(
                    "cloudfront", "cloudfront.test", up, _real_ip("http_cloudfront_viewer_address")
                ),
                _route("cloudflare", "cloudflare.test", up, _real_ip("http_cf_connecting_ip")),
                _route(
                    "blocked",
                    "blocked.test",
                    up,
                    {
                        **_real_ip("http_true_client_ip"),
                        "ip-restriction": {"blacklist": ["198.51.100.66"]},
                    },
                ),
            ]
        }
        p = EdgeProcess(config)
        p.cdn_port = free_port()  # type: ignore[attr-defined]
        p.node = {
            "listeners": [
                {"address": f"127.0.0.1:{p.port}"},
                {
                    "address": f"127.0.0.1:{p.cdn_port}",  # type: ignore[attr-defined]
                    "proxy_protocol": "v2",
                    "trusted_proxies": ["127.0.0.1/32"],
                    "ip_restriction": {"whitelist": [CDN_RANGE]},
                },
            ]
        }
        with p:
            yield p


def _get(port: int, src: str, host: str, headers: dict[str, str]) -> tuple[int, dict | None]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    req = f"GET /viewer HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(build_v2(src, "10.0.0.1", 40000, 443) + req)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    if not data:
        return 0, None
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(body) if status == 200 else None


def _real(echo: dict | None) -> str:
    assert echo is not None
    return next(v.strip() for k, v in echo["headers"] if k.lower() == "x-real-ip")


@pytest.mark.parametrize(
    ("host", "header", "value", "viewer"),
    [
        ("akamai.test", "True-Client-IP", "198.51.100.7", "198.51.100.7"),
        ("cloudflare.test", "CF-Connecting-IP", "2001:db8::9", "2001:db8::9"),
        ("cloudfront.test", "CloudFront-Viewer-Address", "203.0.113.5:46532", "203.0.113.5"),
        (
            "cloudfront.test",
            "CloudFront-Viewer-Address",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334:46532",
            "2001:db8:85a3::8a2e:370:7334",
        ),
    ],
)
def test_viewer_address_from_the_cdn_header(
    edge: EdgeProcess, host: str, header: str, value: str, viewer: str
) -> None:
    status, echo = _get(edge.cdn_port, CDN_EDGE, host, {header: value})  # type: ignore[attr-defined]
    assert status == 200
    assert _real(echo) == viewer
    wait_until(lambda: any(a.get("client") == viewer for a in access_lines(edge)), 10, "log line")


def test_traffic_not_from_the_cdn_is_refused_at_the_listener(edge: EdgeProcess) -> None:
    # a viewer that reached the load balancer directly, bypassing the CDN, and claims an
    # address in the CDN header: refused before any HTTP is read
    status, _ = _get(
        edge.cdn_port,  # type: ignore[attr-defined]
        "127.0.0.5",
        "akamai.test",
        {"True-Client-IP": "198.51.100.7"},
    )
    assert status == 0


def test_cdn_header_from_an_untrusted_source_is_ignored(edge: EdgeProcess) -> None:
    # on the plain listener the peer (127.0.0.1) is not in trusted_addresses
    req = (
        b"GET / HTTP/1.1\r\nHost: akamai.test\r\nTrue-Client-IP: 198.51.100.7\r\n"
        b"Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as s:
        s.sendall(req)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert _real(json.loads(data.partition(b"\r\n\r\n")[2])) == "127.0.0.1"


def test_ip_restriction_after_real_ip_sees_the_viewer(edge: EdgeProcess) -> None:
    port = edge.cdn_port  # type: ignore[attr-defined]
    assert _get(port, CDN_EDGE, "blocked.test", {"True-Client-IP": "198.51.100.66"})[0] == 403
    assert _get(port, CDN_EDGE, "blocked.test", {"True-Client-IP": "198.51.100.67"})[0] == 200
