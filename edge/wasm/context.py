"""Per-stream state a proxy-wasm HTTP context sees, and Envoy-style header maps.

Sans-IO: it edits ``edge.context.Request``/``Response`` objects and plain bytes. The
header map views put the pseudo-headers Envoy adds (``:method :path :authority
:scheme`` on requests, ``:status`` on responses) in front of the real fields, with
names lower-cased, and map a write to a pseudo-header onto the request or response.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Final, NoReturn

from edge.context import Request, Response
from edge.http.events import RequestHead
from edge.http.headers import Headers
from edge.wasm.abi import AbiError, Status, serialize_pairs

if TYPE_CHECKING:
    from edge.wasm.vm import PluginVM, RootState


# what a guest's header field is refused for, by the code ``field_code`` and the
# guest memory's ``field`` (edge/wasm/_wasmcall.c) answer instead of the field
FIELD_ERRORS: Final = (
    (Status.OK, ""),
    (Status.BAD_ARGUMENT, "argument too long"),
    (Status.INVALID_MEMORY_ACCESS, "read out of bounds"),
    (Status.BAD_ARGUMENT, "header name/value with CR, LF or NUL"),
    (Status.BAD_ARGUMENT, "malformed header name"),
)


def field_code(name: bytes, value: bytes) -> tuple[str, str] | int:
    """A guest's header field as ``(lower-cased name, value)``, or the code of why it is
    refused (``FIELD_ERRORS``): it could split or smuggle fields on the wire (CR, LF,
    NUL anywhere; ':' or space inside the name, where a pseudo-header starts with one).
    Byte-value tests (``13 in b``): on fields this short, several times cheaper than a
    regex or a substring search."""
    both = name + value
    if (
        name
        and 13 not in both
        and 10 not in both
        and 0 not in both
        and 32 not in name
        and name.rfind(58) <= 0
    ):
        return name.decode("latin-1").lower(), value.decode("latin-1")
    if not name or 13 in both or 10 in both or 0 in both:
        return 3
    return 4


def field_error(code: int) -> NoReturn:
    """Raise the ``AbiError`` of a field refused with ``code`` (``FIELD_ERRORS``)."""
    status, message = FIELD_ERRORS[code]
    raise AbiError(status, message)


def check_field(name: bytes, value: bytes) -> tuple[str, str]:
    """``field_code``, raising the ``AbiError`` of a refused field."""
    r = field_code(name, value)
    if isinstance(r, int):
        field_error(r)
    return r


_EMPTY_SERIALIZED = b"\0\0\0\0"
# the head of a map of n pairs, by n; maps past this many pairs build theirs each time
_MAX_CACHED_PACKERS = 256
_HEAD_PACKERS: dict[int, Any] = {}


def _serialize_strs(flat: list[str], npairs: int) -> bytes:
    """The pair format (``abi.serialize_pairs``) of ``[k0, v0, k1, v1, ...]`` given as
    latin-1 ``str``: one ``pack`` and one ``encode`` for the whole map instead of two
    of each per field (a map is serialized on every ``get_header_map_pairs``). In C
    (``_wasmcall.serialize_strs``) where the native build is on."""
    if not npairs:
        return _EMPTY_SERIALIZED
    pack = _HEAD_PACKERS.get(npairs)
    if pack is None:
        # struct.pack(f"<{n}I", ...) costs several times a compiled Struct's pack
        pack = struct.Struct(f"<{2 * npairs + 1}I").pack
        if npairs <= _MAX_CACHED_PACKERS:
            _HEAD_PACKERS[npairs] = pack
    # latin-1: one byte per character, so str lengths are the byte lengths
    head = pack(npairs, *map(len, flat))
    flat.append("")
    return head + "\0".join(flat).encode("latin-1")


try:
    from edge.wasm import _wasmcall  # type: ignore[attr-defined]
except ImportError:  # not built, or EDGE_NATIVE=0
    _wasmcall = None

serialize_strs: Final = _wasmcall.serialize_strs if _wasmcall is not None else _serialize_strs


def set_field(h: Headers, lname: str, value: str) -> None:
    """``h.set(lname, value)`` for a name already lower-case (every name a guest
    passes is, by ``check_field``): the same edit of the ``[lower, name, value]``
    entries, without re-lowering the name or rebuilding the list."""
    items = h.raw()
    i = 0
    for e in items:
        if e[0] == lname:
            items[i] = [lname, lname, value]  # entries are shared, never edited in place
            # later fields of the same name go, as in Headers.set (rare: a loop from the end)
            j = len(items) - 1
            while j > i:
                if items[j][0] == lname:
                    del items[j]
                j -= 1
            return
        i += 1
    items.append([lname, lname, value])


class HeaderMap:
    """The interface every map type offers the hostcalls."""

    # the serialized map and the guest call it was made in (``FastStore.seq``): a
    # guest reading the map twice in one callback (size, then pairs) gets it built
    # once; every write through the map, and any later callback, rebuilds it
    _ser = b""
    _ser_seq = -1

    def pairs(self) -> list[tuple[bytes, bytes]]:
        return []

    def serialized(self, seq: int = -1) -> bytes:
        """``serialize_pairs(self.pairs())``; cached within guest call ``seq``."""
        if seq >= 0 and seq == self._ser_seq:
            return self._ser
        data = self._serialize()
        if seq >= 0:
            self._ser = data
            self._ser_seq = seq
        return data

    def _serialize(self) -> bytes:
        return serialize_pairs(self.pairs())

    def get(self, name: str) -> str | None:
        return None

    def add(self, name: str, value: str) -> None:
        """Maps nobody reads (trailers of HTTP/1.1) accept writes and drop them."""

    def replace(self, name: str, value: str) -> None:
        """``name`` is lower-case, as ``check_field`` returns it (so for every write)."""

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
        self._ser_seq = -1
        self.h.add(name, value)

    def replace(self, name: str, value: str) -> None:
        self._ser_seq = -1
        self.h.set(name, value)

    def remove(self, name: str) -> None:
        self._ser_seq = -1
        self.h.remove(name)

    def set_all(self, pairs: list[tuple[str, str]]) -> None:
        self._ser_seq = -1
        self.h = Headers(pairs)


class RequestHeaderMap(HeaderMap):
    __slots__ = ("req", "_ser", "_ser_seq")

    def __init__(self, req: Request) -> None:
        self.req = req
        self._ser_seq = -1

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

    def _serialize(self) -> bytes:
        # an untouched request (``Request.head_source``: its parse, shared by every
        # identical head on the connection) has the map serialized for that parse
        r = self.req
        src: RequestHead | None = r.head_source
        if src is not None:
            kept = src.wasm_map
            if kept is not None and kept[0] == r.scheme:
                return kept[1]
        data = self._serialize_fields()
        if src is not None:
            src.wasm_map = (r.scheme, data)
        return data

    @staticmethod
    def data_of(req: Request) -> bytes:
        """``RequestHeaderMap(req).serialized()``, without the map when the parse of
        the request has it already."""
        src: RequestHead | None = req.head_source
        if src is not None:
            kept = src.wasm_map
            if kept is not None and kept[0] == req.scheme:
                return kept[1]
        return RequestHeaderMap(req)._serialize()

    def _serialize_fields(self) -> bytes:
        # the same pairs as ``pairs()``, flattened as str and encoded once
        r = self.req
        items = r.headers.raw()
        host = None
        flat = [":authority", "", ":path", r.uri, ":method", r.method, ":scheme", r.scheme]
        n = 4
        for e in items:
            if e[0] == "host":
                if host is None:
                    host = e[2]
            else:
                flat.append(e[0])
                flat.append(e[2])
                n += 1
        flat[1] = host or r.host
        return serialize_strs(flat, n)

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

    def _edited(self) -> None:
        self._ser_seq = -1
        # the request that goes upstream changed: its head is built anew (the plugin
        # marks its edits: ``WasmPlugin.marks_request_edits``)
        self.req.head_source = None

    def add(self, name: str, value: str) -> None:
        self._edited()
        if name[:1] == ":":
            self.replace(name, value)
        else:
            self.req.headers.add(name, value)

    def replace(self, name: str, value: str) -> None:
        r = self.req
        self._edited()
        if name[:1] != ":":
            set_field(r.headers, name, value)
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
        self._edited()
        if name[:1] != ":":
            self.req.headers.remove(name)

    def set_all(self, pairs: list[tuple[str, str]]) -> None:
        self._edited()
        host = self.req.headers.get("host")
        self.req.headers = Headers([(n, v) for n, v in pairs if n[:1] != ":"])
        if host is not None and "host" not in self.req.headers:
            self.req.headers.set("host", host)
        for n, v in pairs:
            if n[:1] == ":":
                self.replace(n, v)


class ResponseHeaderMap(HeaderMap):
    __slots__ = ("resp", "_ser", "_ser_seq")

    def __init__(self, resp: Response) -> None:
        self.resp = resp
        self._ser_seq = -1

    def pairs(self) -> list[tuple[bytes, bytes]]:
        out = [(b":status", str(self.resp.status).encode())]
        for n, v in self.resp.headers.lower_items():
            out.append((n.encode("latin-1"), v.encode("latin-1")))
        return out

    def _serialize(self) -> bytes:
        flat = [":status", str(self.resp.status)]
        for e in self.resp.headers.raw():
            flat.append(e[0])
            flat.append(e[2])
        return serialize_strs(flat, len(flat) >> 1)

    def get(self, name: str) -> str | None:
        if name == ":status":
            return str(self.resp.status)
        if name[:1] == ":":
            return None
        return self.resp.headers.get(name)

    def add(self, name: str, value: str) -> None:
        self._ser_seq = -1
        if name[:1] == ":":
            self.replace(name, value)
        else:
            self.resp.headers.add(name, value)

    def replace(self, name: str, value: str) -> None:
        self._ser_seq = -1
        if name == ":status":
            if not (value.isdigit() and 100 <= int(value) <= 599):
                raise AbiError(Status.BAD_ARGUMENT, ":status must be 100-599")
            self.resp.status = int(value)
        elif name[:1] != ":":
            set_field(self.resp.headers, name, value)

    def remove(self, name: str) -> None:
        self._ser_seq = -1
        if name[:1] != ":":
            self.resp.headers.remove(name)

    def set_all(self, pairs: list[tuple[str, str]]) -> None:
        self._ser_seq = -1
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
    what the guest asked for (a local response, a pause, outstanding calls); and
    what the plugin adapter keeps for the request (``req.wasm_ctx`` or an entry of
    ``req.plugin_ctx``; ``owner``: the adapter's)."""

    # one per request: slots make it cheaper to build
    __slots__ = (
        "id",
        "root_id",
        "root",
        "req",
        "resp",
        "_req_map",
        "_resp_map",
        "req_body",
        "resp_body",
        "local",
        "continued",
        "closed",
        "pending",
        "properties",
        "done",
        "vm",
        "skipped",
        "body_done",
        "headers_paused",
        "owner",
    )

    def __init__(self, context_id: int, root: RootState, req: Request, vm: PluginVM) -> None:
        self.id = context_id
        self.root_id = root.id
        self.root = root
        self.req = req
        self.resp: Response | None = None
        self._req_map: HeaderMap | None = None  # made when the guest first asks
        self._resp_map: HeaderMap | None = None  # made from ``resp`` when first asked
        self.req_body = b""
        self.resp_body = b""
        self.local: Response | None = None
        self.continued = False
        self.closed = False
        # None until the guest makes a call or sets a property (most never do)
        self.pending: list[PendingCall] | None = None
        self.properties: dict[tuple[str, ...], bytes] | None = None
        self.done = False
        self.vm = vm
        # the plugin adapter's state: the plugin is out of this request (failure
        # policy); the request body went to the guest whole in ``access``; on_request_
        # headers returned Pause (as Envoy, the body is then buffered for the guest)
        self.skipped = False
        self.body_done = False
        self.headers_paused = False
        self.owner: Any = None

    def req_map_data(self) -> bytes | None:
        """The request map serialized while the guest has not used the map otherwise
        (a guard reading it whole on every request), made without the map; else None."""
        return RequestHeaderMap.data_of(self.req) if self._req_map is None else None

    @property
    def req_map(self) -> HeaderMap:
        m = self._req_map
        if m is None:
            m = self._req_map = RequestHeaderMap(self.req)
        return m

    @property
    def resp_map(self) -> HeaderMap:
        m = self._resp_map
        if m is None:
            resp = self.resp
            if resp is None:
                return EMPTY_MAP  # no response yet
            m = self._resp_map = ResponseHeaderMap(resp)
        return m

    def replace_resp_field(self, name: str, value: str) -> bool:
        """``resp_map.replace(name, value)`` for a field of the response, without making
        the map (a response header filter's one edit per request); False, nothing done,
        for a pseudo-header or before the response."""
        resp = self.resp
        if resp is None or name[:1] == ":":
            return False
        m = self._resp_map
        if m is not None:
            m._ser_seq = -1
        set_field(resp.headers, name, value)
        return True

    def set_response(self, resp: Response) -> None:
        self.resp = resp
        self._resp_map = None

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
