"""Sans-IO HTTP/1.1 request parser: bytes in, events out, limits and smuggling rules enforced.

A head is first checked raw (sizes, header count, bare CR/LF), then parsed: the common,
well-formed shape by one compiled pattern (:mod:`edge.http.grammar`), anything else by
httptools (llhttp, strict mode), which rejects obs-fold, whitespace before the colon,
CTLs and NUL in values, invalid tokens, both Content-Length and Transfer-Encoding, and
duplicate Content-Length, and names the problem. The pattern accepts a subset of what
llhttp accepts, and the framing rules below are applied to both paths alike:

- at most one Content-Length, digits only, never together with Transfer-Encoding;
- Transfer-Encoding must be exactly ``chunked`` (one field, one coding). ``gzip, chunked``
  is legal HTTP but edge would have to decode it to frame it safely; refusing it is the
  simple safe choice, and no real client sends it.
- HTTP/1.1 requires exactly one Host; HTTP/1.0 may omit it.
- Only HTTP/1.0 and HTTP/1.1 (505 otherwise); CONNECT is refused (405); an ``Upgrade``
  request is served as a plain request (Upgrade is hop-by-hop and gets stripped).
- ``Expect`` other than ``100-continue`` gets 417.

Bodies are framed by :mod:`edge.http.framing`. Bytes after one message stay buffered
for the next (pipelining); the caller asks for events one at a time with
``next_event()``, so nothing is parsed ahead of what it is ready for.
"""

from __future__ import annotations

import httptools

from edge.http.events import (
    CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    Event,
    ProtocolError,
    RequestHead,
)
from edge.http.framing import CHUNK_SIZE, HEAD, LENGTH, NONE, BodyParser
from edge.http.grammar import KNOWN_METHODS, REQUEST_HEAD, Fields, split_fields
from edge.http.headers import Headers
from edge.http.limits import DEFAULT_LIMITS, Limits

__all__ = ["CLOSED", "END_OF_MESSAGE", "NEED_DATA", "ProtocolError", "RequestParser"]

# RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request-line
_MAX_LEADING_CRLF = 8


class _SlowCollector(Fields):
    """httptools callback target (the slow path)."""

    __slots__ = ("url",)

    def __init__(self) -> None:
        super().__init__()
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.add(name.decode("latin-1"), value.decode("latin-1"))


def _slow_head(head: bytes) -> tuple[str, str, str, Fields]:
    c = _SlowCollector()
    hp = httptools.HttpRequestParser(c)
    try:
        hp.feed_data(head)
    except httptools.HttpParserUpgrade:
        if hp.get_method() == b"CONNECT":
            raise ProtocolError("CONNECT is not supported", 405) from None
    except httptools.HttpParserInvalidMethodError:
        raise ProtocolError("invalid request method") from None
    except httptools.HttpParserError as e:
        raise ProtocolError(f"malformed request: {e}") from None
    return hp.get_method().decode("ascii"), c.url.decode("latin-1"), hp.get_http_version(), c


def _keep_alive(version: str, connection: str) -> bool:
    # llhttp's should_keep_alive() is reset once a bodiless message completes, so the
    # rule (RFC 9112 9.3) is applied here from the Connection tokens
    if not connection:
        return version == "1.1"
    tokens = {t.strip() for t in connection.split(",")}
    if "close" in tokens:
        return False
    return version == "1.1" or "keep-alive" in tokens


class RequestParser(BodyParser):
    """One per downstream connection; reused across its keep-alive requests."""

    __slots__ = ("_scan", "_head_cap", "_last_raw", "_last")

    error_class = ProtocolError

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits)
        self._scan = 0
        # a head is never longer than request line + headers + the final CRLFs
        self._head_cap = limits.max_request_line + limits.max_header_bytes + 4
        # the last head accepted on this connection, raw, and its parse: keep-alive
        # clients (pollers, API clients, load generators) often repeat a head byte for
        # byte, and the verdict on identical bytes under the same limits is identical
        self._last_raw = b""
        self._last: RequestHead | None = None

    def next_event(self) -> Event:
        """The next event, ``NEED_DATA`` if more bytes are needed, ``CLOSED`` at clean EOF.

        Raises ``ProtocolError`` (status 400/413/414/417/431/505...) on bad input.
        """
        if self._state == HEAD:
            if not self._buf and not self._eof:
                return NEED_DATA  # between requests, nothing to look at yet
            return self._next_head()
        return self._body_event()

    def _next_head(self) -> Event:
        buf = self._buf
        if buf.startswith(b"\r\n"):
            stripped = buf.lstrip(b"\r\n")
            if len(buf) - len(stripped) > 2 * _MAX_LEADING_CRLF:
                raise ProtocolError("too many empty lines before the request line")
            self._buf = buf = stripped
            self._scan = 0
        end = buf.find(b"\r\n\r\n", self._scan)
        if end < 0:
            if self._eof:
                if buf:
                    raise ProtocolError("connection closed inside the request head")
                return CLOSED
            limits = self.limits
            if (
                len(buf) > limits.max_request_line
                and buf.find(b"\n", 0, limits.max_request_line + 2) < 0
            ):
                raise ProtocolError("request line too long", 414)
            if len(buf) > self._head_cap:
                raise ProtocolError("request header fields too large", 431)
            if buf.count(b"\n") != buf.count(b"\r\n"):
                # a bare-LF head would never show CRLFCRLF: refuse it now, not at timeout
                raise ProtocolError("bare LF in the request head")
            self._scan = max(0, len(buf) - 3)
            return NEED_DATA
        if end + 4 == len(buf):
            # the usual case: the buffer holds this head and nothing after it
            head = buf
            self._buf = b""
        else:
            head = buf[: end + 4]
            self._buf = buf[end + 4 :]
        self._scan = 0
        last = self._last
        if last is not None and head == self._last_raw:
            return self._replay(last)
        ev = self._parse_head(head)
        self._last_raw = head
        self._last = ev
        # the cached parse stays pristine: the caller gets (and may mutate) a copy
        return self._replay(ev)

    def _replay(self, last: RequestHead) -> RequestHead:
        """A fresh copy of the parse of an identical head (entries are mutable)."""
        cl = last.content_length
        if last.chunked:
            self._state = CHUNK_SIZE
        elif cl:
            self._remaining = cl
            self._state = LENGTH
        else:
            self._state = NONE
        head = RequestHead(
            last.method,
            last.target,
            last.version,
            Headers.from_lowered([e[:] for e in last.headers.raw()]),
            cl,
            last.chunked,
            last.keep_alive,
            last.expect_continue,
        )
        head.source = last
        return head

    def _parse_head(self, head: bytes) -> RequestHead:
        limits = self.limits
        line_end = head.find(b"\r\n")
        if line_end > limits.max_request_line:
            raise ProtocolError("request line too long", 414)
        if len(head) - line_end - 2 > limits.max_header_bytes:
            raise ProtocolError("request header fields too large", 431)
        crlfs = head.count(b"\r\n")
        if crlfs - 2 > limits.max_header_count:
            raise ProtocolError("too many request header fields", 431)
        if head.count(b"\n") != crlfs or head.count(b"\r") != crlfs:
            raise ProtocolError("bare CR or LF in the request head")
        m = REQUEST_HEAD.fullmatch(head)
        if m is not None and m.group(1) in KNOWN_METHODS and m.group(1) != b"CONNECT":
            method_b, target_b, major, minor, block = m.groups()
            version = f"{major[0] - 48}.{minor[0] - 48}"
            c = split_fields(block)
            method = method_b.decode("ascii")
            target = target_b.decode("latin-1")
            if len(c.cl) > 1 or (c.cl and c.te):
                raise ProtocolError("malformed request: conflicting Content-Length framing")
        else:
            # not the common shape: llhttp decides, and names the problem
            method, target, version, c = _slow_head(head)
        if version != "1.1" and version != "1.0":
            raise ProtocolError(f"HTTP version {version} not supported", 505)
        if c.hosts != 1 and (c.hosts > 1 or version == "1.1"):
            raise ProtocolError("a request needs exactly one Host header")
        headers = Headers.from_lowered(c.items)
        chunked = False
        content_length: int | None = None
        if c.te:
            if len(c.te) != 1 or c.te[0].strip().lower() != "chunked" or version == "1.0":
                raise ProtocolError("unsupported Transfer-Encoding (only a single 'chunked')")
            chunked = True
            self._state = CHUNK_SIZE
        else:
            if c.cl:
                cl = c.cl[0]
                if not (cl.isdigit() and cl.isascii() and len(cl) <= 18):
                    raise ProtocolError("malformed request: invalid Content-Length")
                content_length = int(cl)
                if limits.max_body_size and content_length > limits.max_body_size:
                    raise ProtocolError("request body too large", 413)
                self._remaining = content_length
                self._state = LENGTH if content_length else NONE
            else:
                self._state = NONE
        expect_continue = False
        if c.expect is not None:
            if c.expect.strip().lower() != "100-continue":
                raise ProtocolError("unsupported Expect", 417)
            expect_continue = version == "1.1"
        return RequestHead(
            method,
            target,
            version,
            headers,
            content_length,
            chunked,
            _keep_alive(version, c.connection),
            expect_continue,
        )
