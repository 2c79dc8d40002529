"""Serializing heads, chunked framing and hop-by-hop removal."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edge.context import ConnInfo, Request
from edge.http.headers import Headers
from edge.http.writer import (
    LAST_CHUNK,
    HeadWriteError,
    chunk,
    response_head,
    strip_hop_by_hop,
)
from edge.upstream.client import forward_head
from edge.upstream.forwarding import upstream_head, upstream_host
from edge.upstream.model import Node


def test_response_head() -> None:
    h = Headers([("Content-Length", "2"), ("X-A", "b")])
    assert response_head(200, h) == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\n"
    assert response_head(599, Headers()).startswith(b"HTTP/1.1 599 Unknown\r\n")
    assert response_head(200, Headers(), "Fine").startswith(b"HTTP/1.1 200 Fine\r\n")


def test_upstream_head() -> None:
    req = _req([("Host", "x"), ("Accept", "*/*")])
    req.set_uri("/a?b")
    assert upstream_head(req, "up", None, False) == (
        b"GET /a?b HTTP/1.1\r\nAccept: */*\r\nHost: up\r\nX-Forwarded-For: 10.0.0.9\r\n"
        b"X-Forwarded-Proto: http\r\nX-Forwarded-Host: x\r\nX-Forwarded-Port: 9080\r\n"
        b"X-Real-IP: 10.0.0.9\r\n\r\n"
    )


@pytest.mark.parametrize("value", ["a\r\nInjected: 1", "a\nb", "a\rb", "snow\u2603"])
def test_head_refuses_split_or_non_latin1(value: str) -> None:
    with pytest.raises(HeadWriteError):
        response_head(200, Headers([("X", value)]))
    with pytest.raises(HeadWriteError):
        upstream_head(_req([("Host", "h"), ("X", value)]), "h", None, False)


def test_request_target_with_space_refused() -> None:
    req = _req([("Host", "h")])
    req.set_uri("/a b")
    with pytest.raises(HeadWriteError):
        upstream_head(req, "h", None, False)


def test_chunk() -> None:
    assert chunk(b"hello") == b"5\r\nhello\r\n"
    assert chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"


def test_strip_hop_by_hop() -> None:
    h = Headers(
        [
            ("Connection", "keep-alive, X-Secret"),
            ("Keep-Alive", "timeout=5"),
            ("X-Secret", "1"),
            ("Proxy-Authorization", "Basic x"),
            ("Proxy-Foo", "y"),
            ("TE", "trailers"),
            ("Trailer", "X"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("X-Keep", "yes"),
        ]
    )
    strip_hop_by_hop(h)
    assert list(h.items()) == [("X-Keep", "yes")]


def _req(headers: list[tuple[str, str]], client: str = "10.0.0.9") -> Request:
    conn = ConnInfo("10.0.0.9", 5555, "127.0.0.1", 9080)
    conn.client_addr = client
    return Request("GET", "/p", "1.1", Headers(headers), conn, 0.0, 0.0)


class _Up:
    def __init__(self, pass_host: str, upstream_host: str | None = None, scheme: str = "http"):
        self.pass_host = pass_host
        self.upstream_host = upstream_host
        self.scheme = scheme


def test_forwarded_headers_appended_and_replaced() -> None:
    req = _req(
        [
            ("Host", "api.example.com"),
            ("X-Forwarded-For", "1.1.1.1"),
            ("X-Forwarded-Proto", "https"),
            ("X-Real-IP", "6.6.6.6"),
            ("Connection", "X-Drop"),
            ("X-Drop", "1"),
            ("Expect", "100-continue"),
            ("Accept", "*/*"),
        ]
    )
    out = _head_fields(upstream_head(req, "api.example.com", None, False))
    assert out.get("x-forwarded-for") == "1.1.1.1, 10.0.0.9"
    assert out.get("x-forwarded-proto") == "http"
    assert out.get("x-forwarded-host") == "api.example.com"
    assert out.get("x-forwarded-port") == "9080"
    assert out.get("x-real-ip") == "10.0.0.9"
    assert out.get("host") == "api.example.com"
    for gone in ("x-drop", "connection", "expect", "content-length"):
        assert gone not in out
    assert out.get("accept") == "*/*"


def _head_fields(head: bytes) -> Headers:
    assert head.endswith(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:-2]
    return Headers([(n, v.strip()) for n, _, v in (ln.partition(":") for ln in lines)])


def test_body_framing_headers() -> None:
    req = _req([("Host", "h")])
    chunked = _head_fields(upstream_head(req, "h", None, True))
    assert chunked.get("transfer-encoding") == "chunked"
    sized = _head_fields(upstream_head(req, "h", 12, False))
    assert sized.get("content-length") == "12"


def test_pass_host_modes() -> None:
    req = _req([("Host", "client.example:8443")])
    node = Node("10.1.1.1", 8080)
    assert upstream_host(req, _Up("pass"), node) == "client.example:8443"
    assert upstream_host(req, _Up("node"), node) == "10.1.1.1:8080"
    assert upstream_host(req, _Up("node"), Node("svc.local", 80)) == "svc.local"
    assert upstream_host(req, _Up("rewrite", "internal.svc"), node) == "internal.svc"


def test_forward_head_reuses_bytes_only_for_the_same_request() -> None:
    """The connection's last forwarded head is reused for a repeat, also when plugins
    changed the request, and never when anything that goes upstream differs."""
    conn = ConnInfo("10.0.0.9", 5555, "127.0.0.1", 9080)
    node = Node("127.0.0.1", 8080)
    up = SimpleNamespace(pass_host="pass", upstream_host=None, scheme="http")

    def forwarded(consumer: str, client: str = "10.0.0.9", node_: Node = node) -> bytes:
        req = Request("GET", "/p", "1.1", Headers([("Host", "x")]), conn, 0.0, 0.0)
        req.client_addr = client  # as real-ip does
        req.headers.set("X-Consumer-Username", consumer)  # as an auth plugin does
        return forward_head(req, up, node_, None, False)

    first = forwarded("alice")
    assert forwarded("alice") is first  # the cached bytes themselves
    assert b"X-Consumer-Username: bob\r\n" in forwarded("bob")
    assert b"X-Real-IP: 10.1.1.1\r\n" in forwarded("bob", client="10.1.1.1")
    assert forwarded("bob", client="10.1.1.1") == forwarded("bob", "10.1.1.1", Node("h", 80))
    assert b"Host: x\r\n" in forwarded("bob", node_=Node("h", 80))
