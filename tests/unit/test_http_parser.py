"""The sans-IO request and response parsers: tables of (bytes, events), each fed
whole, byte by byte and followed by trailing data; every smuggling case refused."""

from __future__ import annotations

from typing import Any

import pytest

from edge.errors import UpstreamProtocolError
from edge.http.events import (
    CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    BodyChunk,
    ProtocolError,
    RequestHead,
    ResponseHead,
)
from edge.http.limits import Limits
from edge.http.parser import RequestParser
from edge.http.response_parser import ResponseParser


def norm(ev: Any) -> tuple[Any, ...]:
    if isinstance(ev, RequestHead):
        return (
            "head",
            ev.method,
            ev.target,
            ev.version,
            list(ev.headers.items()),
            ev.content_length,
            ev.chunked,
            ev.keep_alive,
            ev.expect_continue,
        )
    if isinstance(ev, ResponseHead):
        return ("resp", ev.status, ev.version, ev.content_length, ev.chunked, ev.keep_alive)
    if isinstance(ev, BodyChunk):
        return ("data", ev.data)
    return (repr(ev),)


def run(parser: Any, pieces: list[bytes], eof: bool = False) -> list[tuple[Any, ...]]:
    """Feed ``pieces`` one at a time, draining events after each; merge data events."""
    out: list[tuple[Any, ...]] = []
    for i, piece in enumerate([*pieces, b""] if eof else pieces):
        parser.receive_data(piece)
        if not piece and i < len(pieces):
            continue
        while True:
            ev = parser.next_event()
            if ev is NEED_DATA:
                break
            n = norm(ev)
            if n[0] == "data" and out and out[-1][0] == "data":
                out[-1] = ("data", out[-1][1] + n[1])
            else:
                out.append(n)
            if ev is CLOSED:
                return out
    return out


def splits(data: bytes) -> list[list[bytes]]:
    return [[data], [data[i : i + 1] for i in range(len(data))]]


def head(method: str, target: str, headers: list[tuple[str, str]], **kw: Any) -> tuple[Any, ...]:
    return (
        "head",
        method,
        target,
        kw.get("version", "1.1"),
        headers,
        kw.get("cl"),
        kw.get("chunked", False),
        kw.get("keep_alive", True),
        kw.get("expect", False),
    )


EOM = (repr(END_OF_MESSAGE),)

REQUESTS: list[tuple[str, bytes, list[tuple[Any, ...]]]] = [
    (
        "simple get",
        b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        [head("GET", "/a?b=1", [("Host", "x")]), EOM],
    ),
    (
        "content-length body",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        [
            head("POST", "/", [("Host", "x"), ("Content-Length", "5")], cl=5),
            ("data", b"hello"),
            EOM,
        ],
    ),
    (
        "chunked body with extension and trailer",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=v\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
        [
            head("POST", "/", [("Host", "x"), ("Transfer-Encoding", "chunked")], chunked=True),
            ("data", b"hello0123456789"),
            EOM,
        ],
    ),
    (
        "http/1.0 without host closes",
        b"GET / HTTP/1.0\r\n\r\n",
        [head("GET", "/", [], version="1.0", keep_alive=False), EOM],
    ),
    (
        "http/1.0 keep-alive",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        [head("GET", "/", [("Connection", "keep-alive")], version="1.0"), EOM],
    ),
    (
        "connection close",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        [head("GET", "/", [("Host", "x"), ("Connection", "close")], keep_alive=False), EOM],
    ),
    (
        "expect 100-continue",
        b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz",
        [
            head(
                "PUT",
                "/",
                [("Host", "x"), ("Expect", "100-continue"), ("Content-Length", "1")],
                cl=1,
                expect=True,
            ),
            ("data", b"z"),
            EOM,
        ],
    ),
    (
        "leading empty line ignored",
        b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        [head("GET", "/", [("Host", "x")]), EOM],
    ),
    (
        "pipelined",
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
        [head("GET", "/1", [("Host", "x")]), EOM, head("GET", "/2", [("Host", "x")]), EOM],
    ),
    (
        "empty content-length",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        [head("POST", "/", [("Host", "x"), ("Content-Length", "0")], cl=0), EOM],
    ),
]


@pytest.mark.parametrize("name,data,expected", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_requests(name: str, data: bytes, expected: list[tuple[Any, ...]]) -> None:
    for pieces in splits(data):
        assert run(RequestParser(), pieces) == expected


@pytest.mark.parametrize("name,data,expected", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_requests_with_trailing_data(
    name: str, data: bytes, expected: list[tuple[Any, ...]]
) -> None:
    trailing = b"GET /next HTTP/1.1\r\nHo"
    p = RequestParser()
    assert run(p, [data + trailing]) == expected
    assert p.trailing_data == trailing
    assert run(p, [b"st: y\r\n\r\n"]) == [head("GET", "/next", [("Host", "y")]), EOM]


def test_clean_eof_between_requests() -> None:
    p = RequestParser()
    assert run(p, [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"], eof=True)[-1] == (repr(CLOSED),)


BAD_REQUESTS: list[tuple[str, bytes, int]] = [
    # request smuggling
    (
        "cl and te",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    ),
    (
        "te and cl",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        400,
    ),
    (
        "differing cl",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        400,
    ),
    ("cl list", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\n", 400),
    ("cl negative", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    ("cl plus", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", 400),
    (
        "te gzip chunked",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        400,
    ),
    (
        "te chunked gzip",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        400,
    ),
    ("te identity", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400),
    (
        "te twice",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        400,
    ),
    ("te on http/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (
        "te with space in name",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
        400,
    ),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("obs-fold tab", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400),
    ("space before colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("tab before colon", b"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400),
    ("bare lf", b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ("bare lf in header", b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400),
    ("bare cr", b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400),
    ("nul in value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
    ("ctl in value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400),
    ("bad header name", b"GET / HTTP/1.1\r\nHost: x\r\nX(: y\r\n\r\n", 400),
    ("no host on 1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two hosts", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    ("bad method", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("space in target", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("http/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("http/0.9 style", b"GET /\r\n\r\n", 505),
    ("connect", b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 405),
    ("expect other", b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417),
    # malformed chunked bodies
    (
        "chunk size not hex",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
    ),
    (
        "chunk size empty",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        400,
    ),
    (
        "chunk size 0x",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n",
        400,
    ),
    (
        "chunk size space",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\n",
        400,
    ),
    (
        "chunk size sign",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
        400,
    ),
    (
        "chunk size overflow",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 17 + b"\r\n",
        400,
    ),
    (
        "chunk data too long",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk lf only",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n",
        400,
    ),
    (
        "chunk ext with ctl",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a\x01\r\nabc\r\n",
        400,
    ),
]


@pytest.mark.parametrize("name,data,status", BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS])
def test_bad_requests(name: str, data: bytes, status: int) -> None:
    for pieces in splits(data):
        with pytest.raises(ProtocolError) as ei:
            run(RequestParser(), pieces)
        assert ei.value.status == status, (name, ei.value)


SMALL = Limits(max_request_line=64, max_header_bytes=128, max_header_count=3, max_body_size=10)

LIMITS: list[tuple[str, bytes, int]] = [
    ("request line", b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("request line unterminated", b"GET /" + b"a" * 100, 414),
    ("header bytes", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 200 + b"\r\n\r\n", 431),
    ("header bytes unterminated", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 300, 431),
    ("header count", b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431),
    ("body size", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", 413),
]


@pytest.mark.parametrize("name,data,status", LIMITS, ids=[r[0] for r in LIMITS])
def test_limits(name: str, data: bytes, status: int) -> None:
    for pieces in splits(data):
        with pytest.raises(ProtocolError) as ei:
            run(RequestParser(SMALL), pieces)
        assert ei.value.status == status


def test_limits_allow_exact_sizes() -> None:
    data = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n"
    assert run(RequestParser(SMALL), [data])[0][0] == "head"


def test_eof_inside_head_and_body() -> None:
    with pytest.raises(ProtocolError):
        run(RequestParser(), [b"GET / HTTP/1.1\r\nHo"], eof=True)
    with pytest.raises(ProtocolError):
        run(
            RequestParser(),
            [b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab"],
            eof=True,
        )
    with pytest.raises(ProtocolError):
        run(
            RequestParser(),
            [b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"],
            eof=True,
        )


def test_body_is_not_parsed_as_next_request() -> None:
    # a smuggled request inside a declared body stays body
    inner = b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
    data = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b" % (len(inner), inner)
    events = run(RequestParser(), [data])
    assert events[1] == ("data", inner)
    assert events[2] == EOM
    assert len(events) == 3


# -- responses ------------------------------------------------------------------------

RESPONSES: list[tuple[str, str, bytes, list[tuple[Any, ...]]]] = [
    (
        "length",
        "GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        [("resp", 200, "1.1", 3, False, True), ("data", b"abc"), EOM],
    ),
    (
        "chunked",
        "GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        [("resp", 200, "1.1", None, True, True), ("data", b"abc"), EOM],
    ),
    (
        "interim 100 skipped",
        "GET",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        [("resp", 204, "1.1", None, False, True), EOM],
    ),
    (
        "head response has no body",
        "HEAD",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        [("resp", 200, "1.1", 10, False, True), EOM],
    ),
    (
        "304 has no body",
        "GET",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        [("resp", 304, "1.1", 10, False, True), EOM],
    ),
    (
        "http/1.0 length",
        "GET",
        b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nz",
        [("resp", 200, "1.0", 1, False, False), ("data", b"z"), EOM],
    ),
]


@pytest.mark.parametrize("name,method,data,expected", RESPONSES, ids=[r[0] for r in RESPONSES])
def test_responses(name: str, method: str, data: bytes, expected: list[tuple[Any, ...]]) -> None:
    for pieces in splits(data):
        p = ResponseParser()
        p.start(method)
        assert run(p, pieces) == expected


def test_close_delimited_response() -> None:
    for pieces in splits(b"HTTP/1.1 200 OK\r\n\r\nabcdef"):
        p = ResponseParser()
        p.start("GET")
        events = run(p, pieces)
        p.receive_data(b"")
        events.append(norm(p.next_event()))
        assert events == [("resp", 200, "1.1", None, False, False), ("data", b"abcdef"), EOM]


def test_response_keeps_trailing_bytes_for_reuse_check() -> None:
    p = ResponseParser()
    p.start("GET")
    run(p, [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nzEXTRA"])
    assert p.trailing_data == b"EXTRA"


def test_take_body_in_one_step_as_the_events_would_give_it() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"
    p = ResponseParser()
    p.start("GET")
    p.receive_data(head + b"abc")
    assert norm(p.next_event())[0] == "resp"
    assert p.take_body() == (b"abc", False)
    assert p.take_body() == (b"", False)  # nothing more yet
    p.receive_data(b"defNEXT")  # the rest, and the next response's first bytes
    assert p.take_body() == (b"def", True)
    assert p.at_message_boundary and p.trailing_data == b"NEXT"


def test_take_body_of_an_empty_body_and_other_framings() -> None:
    p = ResponseParser()
    p.start("GET")
    p.receive_data(b"HTTP/1.1 204 No Content\r\n\r\n")
    p.next_event()
    assert p.take_body() == (b"", True) and p.at_message_boundary
    p.start("GET")
    p.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")
    p.next_event()
    assert p.take_body() is None  # chunked: event by event
    assert p.next_event() == BodyChunk(b"a")


def test_take_body_refuses_a_body_cut_short() -> None:
    p = ResponseParser()
    p.start("GET")
    p.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc")
    p.next_event()
    assert p.take_body() == (b"abc", False)
    p.receive_data(b"")
    with pytest.raises(UpstreamProtocolError):
        p.take_body()


BAD_RESPONSES: list[tuple[str, bytes]] = [
    ("cl and te", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("differing cl", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
    ("te gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
    ("obs-fold", b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
    ("space before colon", b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n"),
    ("bare lf", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n"),
    ("garbage", b"NOT HTTP\r\n\r\n"),
    ("http/2", b"HTTP/2.0 200 OK\r\n\r\n"),
    ("switching protocols", b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
    ("bad chunk", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ("eof in body", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"),
]


@pytest.mark.parametrize("name,data", BAD_RESPONSES, ids=[r[0] for r in BAD_RESPONSES])
def test_bad_responses(name: str, data: bytes) -> None:
    for pieces in splits(data):
        p = ResponseParser()
        p.start("GET")
        with pytest.raises(UpstreamProtocolError) as ei:
            run(p, pieces, eof=True)
        assert ei.value.status == 502


def test_eof_before_response() -> None:
    p = ResponseParser()
    p.start("GET")
    with pytest.raises(UpstreamProtocolError):
        run(p, [], eof=True)


# -- repeated heads: a connection's last head is replayed from its parse -------------


def _body(p: RequestParser | ResponseParser) -> bytes:
    out = b""
    while True:
        ev = p.next_event()
        if ev is END_OF_MESSAGE:
            return out
        assert isinstance(ev, BodyChunk)
        out += ev.data


def test_repeated_request_head_gets_a_fresh_copy_and_body_state() -> None:
    head = b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-A: 1\r\n\r\n"
    p = RequestParser()
    p.receive_data(head + b"abc" + head + b"xyz")
    first = p.next_event()
    assert isinstance(first, RequestHead)
    assert _body(p) == b"abc"
    first.headers.set("X-A", "changed")  # a plugin rewriting the first request
    second = p.next_event()
    assert isinstance(second, RequestHead)
    assert second.headers.get("x-a") == "1"
    assert second.headers is not first.headers
    assert (second.method, second.target, second.content_length) == ("POST", "/a?x=1", 3)
    assert _body(p) == b"xyz"
    assert p.next_event() is NEED_DATA


def test_repeated_head_after_a_different_one_is_parsed_again() -> None:
    a = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
    b = b"GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    p = RequestParser()
    p.receive_data(a + b + a)
    seen = []
    for _ in range(3):
        ev = p.next_event()
        assert isinstance(ev, RequestHead)
        seen.append((ev.target, ev.keep_alive))
        assert p.next_event() is END_OF_MESSAGE
    assert seen == [("/a", True), ("/b", False), ("/a", True)]


def test_repeated_response_head_depends_on_the_request_method() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-B: 1\r\n\r\n"
    p = ResponseParser()
    p.start("GET")
    p.receive_data(head + b"ok")
    first = p.next_event()
    assert isinstance(first, ResponseHead)
    assert _body(p) == b"ok"
    first.headers.remove("x-b")
    p.start("HEAD")  # same bytes, but a response to HEAD has no body
    p.receive_data(head)
    second = p.next_event()
    assert isinstance(second, ResponseHead)
    assert second.headers.get("x-b") == "1"
    assert p.next_event() is END_OF_MESSAGE
    p.start("GET")
    p.receive_data(head + b"no")
    third = p.next_event()
    assert isinstance(third, ResponseHead) and third.content_length == 2
    assert _body(p) == b"no"
