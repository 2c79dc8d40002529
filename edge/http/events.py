"""Events the sans-IO HTTP/1.1 parsers emit, and the protocol error they raise.

The parsers turn bytes into these objects; the trio server and the upstream client
react to them. ``NEED_DATA`` and ``CLOSED`` are sentinels compared by identity.
"""

from __future__ import annotations

from edge.errors import ClientError
from edge.http.headers import Headers


class ProtocolError(ClientError):
    """The client broke HTTP/1.1 framing or a limit; ``status`` is the 4xx to answer.

    After one of these the byte stream can no longer be trusted: the server answers
    (when it still can) and closes the connection.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status)


class RequestHead:
    __slots__ = (
        "method",
        "target",
        "version",
        "headers",
        "content_length",
        "chunked",
        "keep_alive",
        "expect_continue",
        "source",
        "host",
        "wasm_map",
    )

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        headers: Headers,
        content_length: int | None,
        chunked: bool,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        # the parser's cached parse this head copies: the same object for every head
        # with the same bytes on a connection, so what is derived from it can be cached
        self.source: RequestHead | None = None
        # ``edge.context.host_of`` the Host header, cached on a source head once known
        self.host: str | None = None
        # on a source head: the request header map a WASM guest reads, serialized from
        # this parse (``edge.wasm.context``), and the scheme it was made for
        self.wasm_map: tuple[str, bytes] | None = None

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def __repr__(self) -> str:
        return (
            f"RequestHead({self.method} {self.target} HTTP/{self.version}, "
            f"cl={self.content_length}, chunked={self.chunked}, keep_alive={self.keep_alive})"
        )


class ResponseHead:
    __slots__ = (
        "status",
        "reason",
        "version",
        "_headers",
        "content_length",
        "chunked",
        "keep_alive",
        "source",
        "stripped",
    )

    def __init__(
        self,
        status: int,
        reason: str,
        version: str,
        headers: Headers | None,
        content_length: int | None,
        chunked: bool,
        keep_alive: bool,
    ) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        # None: a copy of ``source``'s, made when first asked for (a relayed response
        # whose downstream head is cached never looks at its headers)
        self._headers = headers
        self.content_length = content_length  # None: chunked, close-delimited or bodiless
        self.chunked = chunked
        self.keep_alive = keep_alive
        # as ``RequestHead.source``
        self.source: ResponseHead | None = None
        # on a source head: its fields without the hop-by-hop ones, once computed
        self.stripped: list[list[str]] | None = None

    def has_own_headers(self) -> bool:
        """Whether ``headers`` was asked for (and may have been changed) already."""
        return self._headers is not None

    @property
    def headers(self) -> Headers:
        h = self._headers
        if h is None:
            assert self.source is not None
            h = self._headers = Headers.from_lowered([e[:] for e in self.source.headers.raw()])
        return h

    def __repr__(self) -> str:
        return (
            f"ResponseHead({self.status} HTTP/{self.version}, cl={self.content_length}, "
            f"chunked={self.chunked}, keep_alive={self.keep_alive})"
        )


class BodyChunk:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BodyChunk) and other.data == self.data

    def __repr__(self) -> str:
        return f"BodyChunk({self.data[:40]!r}{'...' if len(self.data) > 40 else ''})"


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


END_OF_MESSAGE = _Sentinel("END_OF_MESSAGE")
NEED_DATA = _Sentinel("NEED_DATA")
# the peer closed the connection cleanly between messages
CLOSED = _Sentinel("CLOSED")

Event = RequestHead | ResponseHead | BodyChunk | _Sentinel
