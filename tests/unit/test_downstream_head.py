"""The head relayed to the client: reused for a repeated upstream head, with the fields
header filters appended spliced in, and built anew whenever a filter changed more."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from edge.context import Response
from edge.errors import ClientError
from edge.http.events import END_OF_MESSAGE, BodyChunk
from edge.http.limits import DEFAULT_LIMITS
from edge.http.response_parser import ResponseParser
from edge.http.writer import HeadWriteError
from edge.proxy import downstream_head, upstream_response
from edge.upstream.client import UpstreamConn
from tests.support.config import make_request

UPSTREAM = (
    b"HTTP/1.1 200 OK\r\nServer: up\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nok"
)
PLAIN = b"HTTP/1.1 200 OK\r\nServer: up\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n"


def _heads(n: int) -> tuple[ResponseParser, list[Any]]:
    """``n`` responses with the same head bytes on one upstream connection."""
    p = ResponseParser()
    heads = []
    for _ in range(n):
        p.start("GET")
        p.receive_data(UPSTREAM)
        heads.append(p.next_event())
        assert p.next_event() == BodyChunk(b"ok")
        assert p.next_event() is END_OF_MESSAGE
    return p, heads


@pytest.fixture
def new_conn() -> Iterator[Any]:
    """Makes upstream connections (over socket pairs) whose head caches the tests read."""
    socks: list[socket.socket] = []

    def make() -> UpstreamConn:
        a, b = socket.socketpair()
        socks.extend((a, b))
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
        return UpstreamConn(stream, a.fileno(), None, DEFAULT_LIMITS)  # type: ignore[arg-type]

    yield make
    for s in socks:
        s.close()


def _relay(uh: Any, conn: Any, fil: Any = None) -> tuple[int, bytes]:
    req = make_request()
    resp: Response | None = None
    if fil is not None:
        resp = upstream_response(uh)
        fil(resp)
    return downstream_head(req, uh, resp, False, True, conn)


def test_repeated_head_is_reused_and_appended_fields_spliced(new_conn: Any) -> None:
    _, (a, b, c) = _heads(3)
    conn = new_conn()
    assert _relay(a, conn) == (1, PLAIN)
    cached = conn.head_cache
    # a filter that only appends: the cached head plus its fields
    mode, head = _relay(b, conn, lambda r: r.headers.add("X-RateLimit-Remaining", "9"))
    assert (mode, head) == (1, PLAIN[:-2] + b"X-RateLimit-Remaining: 9\r\n\r\n")
    assert conn.head_cache is cached
    # a filter that looks and changes nothing: the cached head itself
    assert _relay(c, conn, lambda r: r.headers.get("server")) == (1, PLAIN)


def test_spliced_head_is_reused_while_the_appended_fields_stay_the_same(new_conn: Any) -> None:
    _, (a, b, c, d) = _heads(4)
    conn = new_conn()
    _relay(a, conn)
    _, first = _relay(b, conn, lambda r: r.headers.add("X-Filter", "1"))
    _, again = _relay(c, conn, lambda r: r.headers.add("X-Filter", "1"))
    assert again is first  # the same appended field: the spliced head itself
    _, other = _relay(d, conn, lambda r: r.headers.add("X-Filter", "2"))
    assert other == PLAIN[:-2] + b"X-Filter: 2\r\n\r\n"


def test_an_edit_leaves_the_shared_upstream_fields_alone(new_conn: Any) -> None:
    # responses to a repeated head share its field entries: an edit of one response
    # must not show in the next
    _, (a, b, c) = _heads(3)
    conn = new_conn()
    _relay(a, conn)
    _, edited = _relay(b, conn, lambda r: r.headers.set("Server", "edge"))
    assert b"Server: edge\r\n" in edited
    assert _relay(c, conn, lambda r: r.headers.get("server")) == (1, PLAIN)


@pytest.mark.parametrize(
    ("fil", "want", "gone"),
    [
        # an upstream field changed in place
        (lambda r: r.headers.set("Server", "edge"), b"Server: edge\r\n", b"Server: up"),
        (lambda r: r.headers.remove("server"), b"Content-Type", b"Server"),
        # the status
        (lambda r: setattr(r, "status", 403), b"HTTP/1.1 403 Forbidden\r\n", b"200 OK"),
        # a framing field appended: the head is built anew, framed by the relay's rules
        (lambda r: r.headers.add("Connection", "close"), b"Content-Length: 2", b"keep-alive"),
    ],
)
def test_filters_that_change_more_get_a_new_head(
    fil: Any, want: bytes, gone: bytes, new_conn: Any
) -> None:
    _, (a, b) = _heads(2)
    conn = new_conn()
    _relay(a, conn)
    _, head = _relay(b, conn, fil)
    assert want in head and gone not in head
    assert head.endswith(b"\r\n\r\n") and head.count(b"\r\n\r\n") == 1


def test_an_appended_field_with_a_line_break_is_refused(new_conn: Any) -> None:
    _, (a, b) = _heads(2)
    conn = new_conn()
    _relay(a, conn)
    with pytest.raises((HeadWriteError, ClientError)):
        _relay(b, conn, lambda r: r.headers.add("X-A", "1\r\nSet-Cookie: evil=1"))


def test_chunked_relay_keeps_appended_fields_and_framing(new_conn: Any) -> None:
    _, (a, b) = _heads(2)
    conn = new_conn()
    req = make_request()
    resp = upstream_response(a)
    mode, first = downstream_head(req, a, resp, True, True, conn)
    resp = upstream_response(b)
    resp.headers.add("X-Filtered", "1")
    mode2, second = downstream_head(make_request(), b, resp, True, True, conn)
    assert mode == mode2 == 2
    assert b"Transfer-Encoding: chunked\r\n" in second and b"Content-Length" not in second
    assert second == first[:-2] + b"X-Filtered: 1\r\n\r\n"
