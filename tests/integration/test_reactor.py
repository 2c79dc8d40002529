"""The reactor (``edge.reactor``): keep-alive connections served from one epoll, and
the hand-overs between it and the trio path, seen from the outside.

Every plain-TCP connection of the other proxy tests goes through the reactor too; these
cases are the ones particular to it: a connection that moves between the two paths
request by request, pipelining, a client that reads slowly, a client that half-closes,
a pooled upstream connection that died while idle, and timeouts of requests that the
reactor (not the trio path) is serving.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.support.procs import EdgeProcess, wait_until
from tests.support.proxy import Reader, connect, edge_proxy, route
from tests.support.upstream import Upstream


@pytest.fixture(scope="module")
def edge(up: Upstream) -> Iterator[EdgeProcess]:
    routes = [
        route("all", "/*", up.addr),
        # limit-req's access handler is async: the reactor hands such requests over
        route("lr", "/lr/*", up.addr, plugins={"limit-req": {"rate": 100000, "burst": 0}}),
        route("slow", "/t/*", up.addr, timeout={"connect": 1, "send": 1, "read": 0.5}),
    ]
    with edge_proxy(routes) as e:
        yield e


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def _echoed_path(body: bytes) -> str:
    return str(json.loads(body)["path"])


def test_connection_moves_between_reactor_and_trio_path(edge: EdgeProcess) -> None:
    """Bodiless requests, one with a body (trio path), one whose plugin must wait (trio
    path from the middle of the phases), all on one connection, answered in order."""
    with connect(edge.port) as s:
        rd = Reader(s)
        for i, req in enumerate(
            [
                _get("/one"),
                b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                _get("/three"),
                _get("/lr/four"),
                _get("/five"),
            ]
        ):
            s.sendall(req)
            status, _, body = rd.response()
            assert status == 200, i
            doc = json.loads(body)
            assert doc["path"] == ["/one", "/two", "/three", "/lr/four", "/five"][i]
            if i == 1:
                assert doc["body"] == "hello"


def test_pipelined_requests_are_answered_in_order(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(_get("/p1") + _get("/p2") + _get("/lr/p3") + _get("/p4"))
        rd = Reader(s)
        paths = [_echoed_path(rd.response()[2]) for _ in range(4)]
    assert paths == ["/p1", "/p2", "/lr/p3", "/p4"]


def test_slow_reader_gets_the_whole_body(edge: EdgeProcess) -> None:
    """A client with a small receive buffer: the reactor keeps what the socket does not
    take and stops reading the upstream until it has gone out."""
    n = 8 * 1024 * 1024
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect(("127.0.0.1", edge.port))
    with s:
        rd = Reader(s)
        s.sendall(_get("/warm"))  # a pooled upstream connection for the next request
        assert rd.response()[0] == 200
        s.sendall(_get(f"/stream?n={n}"))
        status, headers, body = rd.response()
        assert status == 200 and int(headers["content-length"]) == n
        assert len(body) == n and body.count(b"x") == n
        s.sendall(_get("/after"))
        assert _echoed_path(rd.response()[2]) == "/after"


def test_half_closed_client_still_gets_its_answer(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        rd = Reader(s)
        s.sendall(_get("/warm"))
        assert rd.response()[0] == 200
        s.sendall(_get("/half"))
        s.shutdown(socket.SHUT_WR)
        status, _, body = rd.response()
        assert status == 200 and _echoed_path(body) == "/half"
        assert rd.closed()


def test_pooled_connection_closed_by_upstream_is_replaced(edge: EdgeProcess, up: Upstream) -> None:
    with connect(edge.port) as s:
        rd = Reader(s)
        s.sendall(_get("/before"))
        assert rd.response()[0] == 200
        before = up.connections
        up.drop_connections()
        s.sendall(_get("/after-drop"))
        status, _, body = rd.response()
        assert status == 200 and _echoed_path(body) == "/after-drop"
        assert up.connections > before  # answered over a fresh upstream connection


def test_upstream_read_timeout_on_a_pooled_connection_is_504(
    edge: EdgeProcess, up: Upstream
) -> None:
    with connect(edge.port) as s:
        rd = Reader(s)
        s.sendall(_get("/t/warm"))
        assert rd.response()[0] == 200
        try:
            s.sendall(_get("/t/slow?hold=1"))
            status, headers, _ = rd.response()
        finally:
            up.release()
        assert status == 504
        assert headers.get("connection") == "close"
        assert rd.closed()
    # the worker writes its log line after the close the client saw: wait for it
    wait_until(lambda: '"status":504' in edge.log(), 10, "a 504 in the access log")


def test_client_gone_mid_response_is_logged_499(edge: EdgeProcess, up: Upstream) -> None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", edge.port))
    rd = Reader(s)
    s.sendall(_get("/warm"))
    assert rd.response()[0] == 200
    s.sendall(_get("/stream?n=33554432"))
    s.recv(1024)  # the response has begun
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # reset: edge's next write fails
    wait_until(lambda: '"status":499' in edge.log(), 10, "a 499 in the access log")
