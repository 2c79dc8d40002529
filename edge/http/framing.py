"""Body framing shared by the request and response parsers (sans-IO).

Bodies are decoded here in Python rather than by httptools so that the parser knows
exactly where one message ends and the next begins (pipelining), and so that chunk
sizes are checked strictly: a chunk-size line is 1-16 hex digits, optionally followed
by extensions, ended by CRLF; the data is followed by exactly CRLF. Anything else is a
framing error, the raw material of request smuggling. Trailers are read, bounded and
dropped (edge does not forward trailers).
"""

from __future__ import annotations

from edge.http.events import END_OF_MESSAGE, NEED_DATA, BodyChunk, Event
from edge.http.limits import Limits

# body states
NONE = 0  # no body: the next event is END_OF_MESSAGE
LENGTH = 1  # Content-Length: ``remaining`` bytes
CHUNK_SIZE = 2  # expecting a chunk-size line
CHUNK_DATA = 3  # inside a chunk: ``remaining`` bytes
CHUNK_CRLF = 4  # the CRLF after chunk data
TRAILER = 5  # after the last chunk: trailer fields until an empty line
UNTIL_CLOSE = 6  # response body delimited by the connection closing
HEAD = 7  # between messages: the subclass parses a head

_HEX = b"0123456789abcdefABCDEF"
# bytes never valid in a chunk extension (CTLs other than HTAB, and DEL)
_EXT_BAD = bytes(c for c in range(32) if c != 9) + b"\x7f"
# a chunk larger than this is surely an attack on int parsing or memory accounting
MAX_CHUNK_HEX_DIGITS = 16


class BodyParser:
    """Buffer + body state machine; subclasses add head parsing in state ``HEAD``."""

    __slots__ = ("_buf", "_eof", "_state", "_remaining", "limits", "_trailer_seen")

    error_class: type[Exception] = ValueError

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._buf = b""
        self._eof = False
        self._state = HEAD
        self._remaining = 0
        self._trailer_seen = 0

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
        elif self._buf:
            self._buf += data
        else:
            self._buf = data

    @property
    def trailing_data(self) -> bytes:
        """Bytes received but not yet parsed (pipelined requests)."""
        return self._buf

    @property
    def at_message_boundary(self) -> bool:
        return self._state == HEAD

    def take_body(self) -> tuple[bytes, bool] | None:
        """For a length-delimited or empty body: the body bytes here now and whether
        the message ends with them, in one step (``next_event`` would take two or
        three: a chunk, END_OF_MESSAGE). None for other framings: use ``next_event``."""
        state = self._state
        if state == NONE:
            self._state = HEAD
            return b"", True
        if state != LENGTH:
            return None
        remaining = self._remaining
        buf = self._buf
        n = len(buf)
        if n < remaining:
            if not n and self._eof:
                raise self._error("connection closed before the end of the body")
            self._buf = b""
            self._remaining = remaining - n
            return buf, False
        if n > remaining:
            self._buf = buf[remaining:]
            buf = buf[:remaining]
        else:
            self._buf = b""
        self._remaining = 0
        self._state = HEAD
        return buf, True

    def _error(self, message: str, status: int = 400) -> Exception:
        return self.error_class(message, status)  # type: ignore[call-arg]

    def _body_event(self) -> Event:
        state = self._state
        if state == LENGTH:
            remaining = self._remaining
            if remaining == 0:
                self._state = HEAD
                return END_OF_MESSAGE
            buf = self._buf
            if not buf:
                if self._eof:
                    raise self._error("connection closed before the end of the body")
                return NEED_DATA
            if len(buf) <= remaining:
                self._buf = b""
                self._remaining = remaining - len(buf)
                return BodyChunk(buf)
            self._buf = buf[remaining:]
            self._remaining = 0
            return BodyChunk(buf[:remaining])
        if state == NONE:
            self._state = HEAD
            return END_OF_MESSAGE
        if state == UNTIL_CLOSE:
            buf = self._buf
            if buf:
                self._buf = b""
                return BodyChunk(buf)
            if self._eof:
                self._state = HEAD
                return END_OF_MESSAGE
            return NEED_DATA
        return self._chunked_event()

    def _chunked_event(self) -> Event:
        while True:
            state = self._state
            buf = self._buf
            if state == CHUNK_DATA:
                if not buf:
                    break
                remaining = self._remaining
                if len(buf) <= remaining:
                    self._buf = b""
                    data = buf
                else:
                    self._buf = buf[remaining:]
                    data = buf[:remaining]
                self._remaining = remaining - len(data)
                if self._remaining == 0:
                    self._state = CHUNK_CRLF
                return BodyChunk(data)
            if state == CHUNK_SIZE:
                i = buf.find(b"\r\n")
                if i < 0:
                    if len(buf) > self.limits.max_chunk_line:
                        raise self._error("chunk size line too long")
                    break
                if i > self.limits.max_chunk_line:
                    raise self._error("chunk size line too long")
                self._remaining = self._chunk_size(buf[:i])
                self._buf = buf[i + 2 :]
                self._state = CHUNK_DATA if self._remaining else TRAILER
                self._trailer_seen = 0
                continue
            if state == CHUNK_CRLF:
                if len(buf) < 2:
                    if buf and buf != b"\r":
                        raise self._error("chunk data not followed by CRLF")
                    break
                if buf[:2] != b"\r\n":
                    raise self._error("chunk data not followed by CRLF")
                self._buf = buf[2:]
                self._state = CHUNK_SIZE
                continue
            # TRAILER: fields until an empty line; each ends with CRLF
            if buf[:2] == b"\r\n":
                self._buf = buf[2:]
                self._state = HEAD
                return END_OF_MESSAGE
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                if len(buf) > self.limits.max_trailer_bytes:
                    raise self._error("trailer section too large", 431)
                break
            if i + 2 > self.limits.max_trailer_bytes:
                raise self._error("trailer section too large", 431)
            trailer = buf[: i + 2]
            if (
                b"\n " in trailer
                or b"\n\t" in trailer
                or trailer.count(b"\n") != trailer.count(b"\r\n")
            ):
                raise self._error("malformed trailer section")
            self._buf = buf[i + 4 :]
            self._state = HEAD
            return END_OF_MESSAGE
        if self._eof:
            raise self._error("connection closed inside a chunked body")
        return NEED_DATA

    def _chunk_size(self, line: bytes) -> int:
        size, sep, ext = line.partition(b";")
        if sep:
            # RFC 9112 7.1.1: BWS allowed before ";"
            size = size.rstrip(b" \t")
            if ext.translate(None, _EXT_BAD) != ext:
                raise self._error("invalid chunk extension")
        if not size or len(size) > MAX_CHUNK_HEX_DIGITS or size.translate(None, _HEX):
            raise self._error("invalid chunk size")
        return int(size, 16)
