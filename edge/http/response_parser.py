"""Sans-IO parser for upstream responses, with the same scrutiny as client requests.

A malformed or smuggling-shaped response (both Content-Length and Transfer-Encoding,
a Transfer-Encoding other than a single ``chunked``, bad chunk sizes, obs-fold, bare
LF, an oversized head) raises ``UpstreamProtocolError`` (502). Interim 1xx responses
are skipped (edge answers ``Expect: 100-continue`` itself and never forwards
``Upgrade``, so a 101 is an error). Responses to HEAD, and 204/304, have no body
whatever their headers say; a response with neither length nor chunking is
delimited by the upstream closing the connection.
"""

from __future__ import annotations

import httptools

from edge.errors import UpstreamProtocolError
from edge.http.events import NEED_DATA, Event, ResponseHead
from edge.http.framing import CHUNK_SIZE, HEAD, LENGTH, NONE, UNTIL_CLOSE, BodyParser
from edge.http.grammar import RESPONSE_HEAD, Fields, split_fields
from edge.http.headers import Headers
from edge.http.limits import DEFAULT_LIMITS, Limits
from edge.http.parser import _keep_alive


class _UpstreamError(UpstreamProtocolError):
    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)


class _SlowCollector(Fields):
    __slots__ = ("reason",)

    def __init__(self) -> None:
        super().__init__()
        self.reason = b""

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.add(name.decode("latin-1"), value.decode("latin-1"))


def _slow_head(head: bytes) -> tuple[int, str, str, Fields]:
    """llhttp's verdict on a head the fast pattern did not accept."""
    c = _SlowCollector()
    hp = httptools.HttpResponseParser(c)
    try:
        hp.feed_data(head)
    except httptools.HttpParserUpgrade:
        raise _UpstreamError("upstream tried to upgrade the connection") from None
    except httptools.HttpParserError as e:
        raise _UpstreamError(f"malformed upstream response: {e}") from None
    return hp.get_status_code(), c.reason.decode("latin-1"), hp.get_http_version(), c


class ResponseParser(BodyParser):
    """One per upstream connection; call ``start(method)`` before each response."""

    __slots__ = ("_head_request", "_scan", "_last_raw", "_last_hr", "_last", "_last_state")

    error_class = _UpstreamError

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits)
        self._head_request = False
        self._scan = 0
        # the last final head accepted on this connection and its parse: an upstream
        # repeats its head byte for byte for a run of responses (until its Date ticks)
        self._last_raw = b""
        self._last_hr = False
        self._last: ResponseHead | None = None
        self._last_state = (NONE, 0)

    def start(self, method: str) -> None:
        """Prepare for the response to a request with ``method``."""
        self._head_request = method == "HEAD"

    def next_event(self) -> Event:
        if self._state == HEAD:
            return self._next_head()
        return self._body_event()

    def _next_head(self) -> Event:
        while True:
            buf = self._buf
            end = buf.find(b"\r\n\r\n", self._scan)
            if end < 0:
                if len(buf) > self.limits.max_response_header_bytes:
                    raise _UpstreamError("upstream response head too large")
                if self._eof:
                    raise _UpstreamError(
                        "upstream closed the connection before a response"
                        if not buf
                        else "upstream closed the connection inside the response head"
                    )
                if buf.count(b"\n") != buf.count(b"\r\n"):
                    raise _UpstreamError("bare LF in the upstream response head")
                self._scan = max(0, len(buf) - 3)
                return NEED_DATA
            head = buf[: end + 4]
            self._buf = buf[end + 4 :]
            self._scan = 0
            if len(head) > self.limits.max_response_header_bytes:
                raise _UpstreamError("upstream response head too large")
            last = self._last
            if last is not None and head == self._last_raw and self._head_request == self._last_hr:
                return self._replay(last)
            resp = self._parse_head(head)
            if resp is not None:
                self._last_raw = head
                self._last_hr = self._head_request
                self._last = resp
                self._last_state = (self._state, self._remaining)
                # the cached parse stays pristine: the caller gets (and may mutate) a copy
                return self._replay(resp)

    def _replay(self, last: ResponseHead) -> ResponseHead:
        self._state, self._remaining = self._last_state
        head = ResponseHead(
            last.status,
            last.reason,
            last.version,
            None,
            last.content_length,
            last.chunked,
            last.keep_alive,
        )
        head.source = last
        return head

    def _parse_head(self, head: bytes) -> ResponseHead | None:
        crlfs = head.count(b"\r\n")
        if head.count(b"\n") != crlfs or head.count(b"\r") != crlfs:
            raise _UpstreamError("bare CR or LF in the upstream response head")
        m = RESPONSE_HEAD.fullmatch(head)
        if m is not None:
            major, minor, status_b, reason_b, block = m.groups()
            version = f"{major[0] - 48}.{minor[0] - 48}"
            status = int(status_b)
            reason = reason_b.decode("latin-1") if reason_b else ""
            c = split_fields(block)
            if len(c.cl) > 1 or (c.cl and c.te):
                raise _UpstreamError("malformed upstream response: conflicting framing")
        else:
            status, reason, version, c = _slow_head(head)
        if version != "1.1" and version != "1.0":
            raise _UpstreamError(f"upstream answered HTTP/{version}")
        if status < 200:
            if status == 101:
                raise _UpstreamError("upstream switched protocols unasked")
            return None  # interim response: wait for the final one
        keep_alive = _keep_alive(version, c.connection)
        chunked = False
        content_length: int | None = None
        if c.te:
            if len(c.te) != 1 or c.te[0].strip().lower() != "chunked":
                raise _UpstreamError("unsupported Transfer-Encoding from upstream")
            chunked = True
        elif c.cl:
            cl = c.cl[0]
            if not (cl.isdigit() and cl.isascii() and len(cl) <= 18):
                raise _UpstreamError("malformed upstream response: invalid Content-Length")
            content_length = int(cl)
        if self._head_request or status == 204 or status == 304:
            self._state = NONE
            chunked = False
            if status == 204:
                content_length = None
        elif chunked:
            self._state = CHUNK_SIZE
        elif content_length is not None:
            self._remaining = content_length
            self._state = LENGTH if content_length else NONE
        else:
            self._state = UNTIL_CLOSE
            keep_alive = False
        return ResponseHead(
            status,
            reason,
            version,
            Headers.from_lowered(c.items),
            content_length,
            chunked,
            keep_alive,
        )
