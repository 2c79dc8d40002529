"""Limits and request smuggling through the real process: each refused with its status
and the connection closed; nothing refused reaches the upstream."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.procs import EdgeProcess
from tests.support.proxy import Reader, connect, edge_proxy, error_msg, route
from tests.support.upstream import Upstream

LIMITS = {
    "max_request_line": 256,
    "max_header_bytes": 1024,
    "max_header_count": 10,
    "max_body_size": 1000,
    "header_timeout": 1.0,
    "body_timeout": 1.0,
    "keepalive_timeout": 1.0,
}


@pytest.fixture(scope="module")
def edge(up: Upstream) -> Iterator[EdgeProcess]:
    with edge_proxy([route("all", "/*", up.addr)], limits=LIMITS) as e:
        yield e


def refused(edge: EdgeProcess, data: bytes) -> tuple[int, str]:
    """Send ``data``; return the status and error message, asserting the close."""
    with connect(edge.port) as s:
        s.sendall(data)
        rd = Reader(s)
        status, headers, body = rd.response()
        assert headers.get("connection") == "close"
        assert rd.closed()
    return status, error_msg(body)


def test_request_line_too_long(edge: EdgeProcess) -> None:
    status, _ = refused(edge, b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414


def test_header_bytes_too_large(edge: EdgeProcess) -> None:
    status, _ = refused(edge, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 2000 + b"\r\n\r\n")
    assert status == 431


def test_too_many_headers(edge: EdgeProcess) -> None:
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(11))
    status, _ = refused(edge, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert status == 431


def test_body_too_large_by_content_length(edge: EdgeProcess) -> None:
    status, msg = refused(edge, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
    assert status == 413 and "too large" in msg


def test_body_too_large_chunked(edge: EdgeProcess) -> None:
    body = b"".join(b"100\r\n" + b"z" * 256 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    status, _ = refused(
        edge, b"POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    )
    assert status == 413


def test_slowloris_header_timeout(edge: EdgeProcess) -> None:
    status, msg = refused(edge, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert status == 408 and "head" in msg


def test_body_timeout(edge: EdgeProcess) -> None:
    status, msg = refused(edge, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert status == 408 and "body" in msg


def test_idle_keepalive_connection_closed_quietly(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        rd = Reader(s)
        assert rd.response()[0] == 200
        # nothing more is sent: after keepalive_timeout edge closes without a word
        assert rd.closed()
        assert rd.buf == b""


SMUGGLING = [
    (
        "cl-te",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "te-cl",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    ),
    (
        "differing-cl",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ),
    (
        "te-gzip-chunked",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "te-chunked-gzip",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    ),
    ("te-xchunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    (
        "te-space-colon",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "bad-chunk-size",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\nabc\r\n0\r\n\r\n",
    ),
    (
        "chunk-size-overflow",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 20 + b"\r\n",
    ),
    (
        "chunk-missing-crlf",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
    ),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
    ("bare-lf", b"GET / HTTP/1.1\nHost: x\n\n"),
    ("nul-in-header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
]


@pytest.mark.parametrize("name,data", SMUGGLING, ids=[s[0] for s in SMUGGLING])
def test_smuggling_refused(edge: EdgeProcess, up: Upstream, name: str, data: bytes) -> None:
    before = len(up.requests)
    status, _ = refused(edge, data)
    assert status == 400, name
    assert len(up.requests) == before


def test_smuggled_request_after_refusal_is_never_parsed(edge: EdgeProcess, up: Upstream) -> None:
    before = len(up.requests)
    inner = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    status, _ = refused(
        edge,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n" + inner,
    )
    assert status == 400
    assert not any(r["path"] == "/smuggled" for r in up.requests[before:])


def test_http_version_not_supported(edge: EdgeProcess) -> None:
    status, _ = refused(edge, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    assert status == 505


def test_client_disconnect_midway_does_not_hurt_worker(edge: EdgeProcess) -> None:
    s = connect(edge.port)
    s.sendall(b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    with connect(edge.port) as s2:
        s2.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(s2).response()[0] == 200
