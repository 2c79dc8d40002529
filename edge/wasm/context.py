"""Per-stream state a proxy-wasm HTTP context sees, and Envoy-style header maps.

Sans-IO: it edits ``edge.context.Request``/``Response`` objects and plain bytes. The
header map views put the pseudo-headers Envoy adds (``:method :path :authority
:scheme`` on requests, ``:status`` on responses) in front of the real fields, with
names lower-cased, and map a write to a pseudo-header onto the request or response.
"""

from __future__ import annotations

import re
from typing import Any

from edge.context import Request, Response
from edge.http.headers import Headers
from edge.wasm.abi import AbiError, Status

# compiled once: a field the guest sets is checked on every header hostcall
_CTL = re.compile(rb"[\r\n\x00]")
_NAME_BAD = re.compile(rb"[\r\n\x00 ]|.:")


def check_field(name: bytes, value: bytes) -> tuple[str, str]:
    """A guest's header field, refused if it could split or smuggle fields on the
    wire (CR, LF, NUL anywhere; ':' or space inside the name)."""
    if name and _NAME_BAD.search(name) is None and _CTL.search(value) is None:
        return name.decode("latin-1").lower(), value.decode("latin-1")
    both = name + value
    if not name or b"\r" in both or b"\n" in both or b"\0" in both:
        raise AbiError(Status.BAD_ARGUMENT, "header name/value with CR, LF or NUL")
    raise AbiError(Status.BAD_ARGUMENT, "malformed header name")


class HeaderMap:
    """The interface every map type offers the hostcalls."""

    def pairs(self) -> list[tuple[bytes, bytes]]:
        return []

    def get(self, name: str) -> str | None:
        return None

    def add(self, name: str, value: str) -> None:
        """Maps nobody reads (trailers of HTTP/1.1) accept writes and drop them."""

    def replace(self, name: str, value: str) -> None:
        pass

    def remove(self, name: str) -> None:
        pass

    def set_all(self, pairs: list[tuple[str, str]]) -> None:
        pass


class _FieldsMap(HeaderMap):
    """A plain ``Headers`` (http_call response headers, local-response headers)."""

    def __init__(self, headers: Headers) -> None:
        self.h = headers

    def pairs(self) -> list[tuple[bytes, bytes]]:
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in self.h.lower_items()]

    def get(self, name: str) -> str | None:
        return self.h.get(name)

    def add(self, name: str, value: str) -> None:
        self.h.add(name, value)

    def replace(self, name: str, value: str) -> None:
        self.h.set(name, value)

    def remove(self, name: str) -> None:
        self.h.remove(name)

    def set_all(self, pairs: list[tuple[str, str]]) -> None:
        self.h = Headers(pairs)


class RequestHeaderMap(HeaderMap):
    __slots__ = ("req",)

    def __init__(self, req: Request) -> None:
        self.req = req

    def _authority(self) -> str:
        return self.req.headers.get("host") or self.req.host

    def pseudo(self) -> list[tuple[str, str]]:
        r = self.req
        return [
            (":authority", self._authority()),
            (":path", r.uri),
            (":method", r.method),
            (":scheme", r.scheme),
        ]

    def pairs(self) -> list[tuple[bytes, bytes]]:
        out = [(n.encode(), v.encode("latin-1")) for n, v in self.pseudo()]
        for n, v in self.req.headers.lower_items():
            # Envoy carries Host only as :authority; SDK examples rely on no duplicate
            if n != "host":
                out.append((n.encode("latin-1"), v.encode("latin-1")))
        return out

    def get(self, name: str) -> str | None:
        if name[:1] == ":":
            r = self.req
            if name == ":path":
                return r.uri
            if name == ":method":
                return r.method
            if name == ":authority":
                return self._authority()
            if name == ":scheme":
                return r.scheme
            return None
        return self.req.headers.get(name)

    def add(self, name: str, value: str) -> None:
        if name[:1] == ":":
            self.replace(name, value)
        else:
            self.req.headers.add(name, value)

    def replace(self, name: str, value: str) -> None:
        r = self.req
        if name[:1] != ":":
            r.headers.set(name, value)
            if name == "host":
                r.host = value.partition(":")[0].lower()
        elif name == ":path":
            if not value.startswith("/") and value != "*":
                raise AbiError(Status.BAD_ARGUMENT, ":path must start with /")
            r.set_uri(value)
        elif name == ":method":
            if not value.isalpha():
                raise AbiError(Status.BAD_ARGUMENT, ":method must be a token")
            r.method = value.upper()
        elif name == ":authority":
            r.headers.set("host", value)
            r.host = value.partition(":")[0].lower()
        elif name == ":scheme":
            r.scheme = value
        # other pseudo-headers have no meaning on HTTP/1.1 and are dropped

    def remove(self, name: str) -> None:
        if name[:1] != ":":
            self.req.headers.remove(name)

    def set_all(self, pairs: list[tuple[str, str]]) -> None:
        host = self.req.headers.get("host")
        self.req.headers = Headers([(n, v) for n, v in pairs if n[:1] != ":"])
        if host is not None and "host" not in self.req.headers:
            self.req.headers.set("host", host)
        for n, v in pairs:
            if n[:1] == ":":
                self.replace(n, v)


class ResponseHeaderMap(HeaderMap):
    __slots__ = ("resp",)

    def __init__(self, resp: Response) -> None:
        self.resp = resp

    def pairs(self) -> list[tuple[bytes, bytes]]:
        out = [(b":status", str(self.resp.status).encode())]
        for n, v in self.resp.headers.lower_items():
            out.append((n.encode("latin-1"), v.encode("latin-1")))
        return out

    def get(self, name: str) -> str | None:
        if name == ":status":
            return str(self.resp.status)
        if name[:1] == ":":
            return None
        return self.resp.headers.get(name)

    def add(self, name: str, value: str) -> None:
        if name[:1] == ":":
            self.replace(name, value)
        else:
            self.resp.headers.add(name, value)

    def replace(self, name: str, value: str) -> None:
        if name == ":status":
            if not (value.isdigit() and 100 <= int(value) <= 599):
                raise AbiError(Status.BAD_ARGUMENT, ":status must be 100-599")
            self.resp.status = int(value)
        elif name[:1] != ":":
            self.resp.headers.set(name, value)

    def remove(self, name: str) -> None:
        if name[:1] != ":":
            self.resp.headers.remove(name)

    def set_all(self, pairs: list[tuple[str, str]]) -> None:
        self.resp.headers = Headers([(n, v) for n, v in pairs if n[:1] != ":"])
        for n, v in pairs:
            if n[:1] == ":":
                self.replace(n, v)


EMPTY_MAP = HeaderMap()


class CallResult:
    """An http_call's outcome as the guest reads it in on_http_call_response."""

    __slots__ = ("status", "headers", "body", "failed")

    def __init__(self, status: int, headers: Headers, body: bytes, failed: bool = False) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.failed = failed

    def header_map(self) -> HeaderMap:
        if self.failed:
            return EMPTY_MAP
        h = Headers([(":status", str(self.status))])
        for n, v in self.headers.lower_items():
            h.add(n, v)
        return _FieldsMap(h)


class PendingCall:
    """One proxy_http_call waiting to run: parsed and checked inside the hostcall,
    performed by the runtime after the callback returns."""

    __slots__ = (
        "token",
        "upstream",
        "method",
        "path",
        "authority",
        "headers",
        "body",
        "timeout",
        "context_id",
    )

    def __init__(
        self,
        token: int,
        upstream: str,
        method: str,
        path: str,
        authority: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout: float,
        context_id: int,
    ) -> None:
        self.token = token
        self.upstream = upstream
        self.method = method
        self.path = path
        self.authority = authority
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.context_id = context_id


class StreamState:
    """One HTTP context: the request, the response once known, body buffers, and
    what the guest asked for (a local response, a pause, outstanding calls)."""

    # one per request: slots make it cheaper to build
    __slots__ = (
        "id",
        "root_id",
        "root",
        "req",
        "resp",
        "req_map",
        "resp_map",
        "req_body",
        "resp_body",
        "local",
        "continued",
        "closed",
        "pending",
        "properties",
        "done",
    )

    def __init__(self, context_id: int, root_id: int, req: Request) -> None:
        self.id = context_id
        self.root_id = root_id
        self.root: Any = None  # the RootState, set by the VM
        self.req = req
        self.resp: Response | None = None
        self.req_map: HeaderMap = RequestHeaderMap(req)
        self.resp_map: HeaderMap = EMPTY_MAP
        self.req_body = b""
        self.resp_body = b""
        self.local: Response | None = None
        self.continued = False
        self.closed = False
        self.pending: list[PendingCall] = []
        self.properties: dict[tuple[str, ...], bytes] = {}
        self.done = False

    def set_response(self, resp: Response) -> None:
        self.resp = resp
        self.resp_map = ResponseHeaderMap(resp)

    def header_map(self, map_type: int) -> HeaderMap | None:
        if map_type == 0:
            return self.req_map
        if map_type == 2:
            return self.resp_map
        if map_type in (1, 3):
            return EMPTY_MAP
        return None

    def __repr__(self) -> str:
        return f"StreamState(id={self.id}, root={self.root_id})"


def local_response(status: int, body: bytes, pairs: list[tuple[str, str]], details: str) -> Any:
    """The Response a proxy_send_local_response describes."""
    h = Headers([(n, v) for n, v in pairs if n[:1] != ":"])
    if body and "content-type" not in h:
        h.set("content-type", "text/plain")
    r = Response(status, h, body, local=True)
    r.reason = details
    return r
