"""Per-request state shared by the server, router, plugins, upstream client and logs.

A ``Request`` is created by the HTTP server for each request and dropped after the log
phase. Everything that can be derived once per request (query args, cookies) is parsed
lazily and cached, because most requests never need it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from edge.http.headers import Headers


def host_of(host: str) -> str:
    """A Host header's host: lower case, without the port (IPv6 literals keep brackets)."""
    if host.startswith("["):
        end = host.find("]")
        host = host[: end + 1] if end > 0 else host
    else:
        host = host.partition(":")[0]
    return host.lower()


class ConnInfo:
    """What is known about the downstream connection (shared by its requests)."""

    __slots__ = (
        "id",
        "peer_addr",
        "peer_port",
        "server_addr",
        "server_port",
        "client_addr",
        "client_port",
        "tls",
        "sni",
        "mtls",
        "client_cert_subject",
        "proxy_tlvs",
        "requests",
        "fwd_cache",
    )

    def __init__(
        self,
        peer_addr: str,
        peer_port: int,
        server_addr: str,
        server_port: int,
        conn_id: int = 0,
    ) -> None:
        self.id = conn_id
        self.peer_addr = peer_addr  # the TCP peer (a load balancer, a CDN edge...)
        self.peer_port = peer_port
        self.server_addr = server_addr
        self.server_port = server_port
        # the client as far as the listener knows (PROXY protocol may replace it)
        self.client_addr = peer_addr
        self.client_port = peer_port
        self.tls = False
        self.sni: str | None = None
        self.mtls = False
        self.client_cert_subject: str | None = None
        # PROXY protocol v2 TLVs by name: alpn, authority, unique_id, aws_vpce_id ...
        self.proxy_tlvs: dict[str, str] = {}
        self.requests = 0
        # the upstream request head last built (``edge.upstream.client.forward_head``):
        # (source or None, node, content_length, chunked, bytes, then for a head
        # plugins changed: (method, uri, client, host), the header entries)
        self.fwd_cache: tuple[Any, ...] | None = None


class Request:
    """One HTTP request as it moves through the gateway."""

    __slots__ = (
        "method",
        "uri",
        "path",
        "query",
        "version",
        "headers",
        "host",
        "scheme",
        "conn",
        "client_addr",
        "client_port",
        "request_id",
        "start",
        "start_wall",
        "route",
        "service",
        "consumer",
        "matched_uri",
        "matched_host",
        "vars",
        "plugin_ctx",
        "wasm_ctx",
        "content_length",
        "chunked",
        "body",
        "read_body",
        "keep_alive",
        # filled in as the request is served, read by the log phase
        "status",
        "bytes_in",
        "bytes_out",
        "upstream_addr",
        "upstream_status",
        "upstream_latency",
        "_args",
        "_cookies",
        "head_source",
    )

    def __init__(
        self,
        method: str,
        uri: str,
        version: str,
        headers: Headers,
        conn: ConnInfo,
        start: float,
        start_wall: float,
        host: str | None = None,
    ) -> None:
        """``host``: ``host_of`` the Host header, when the caller knows it already."""
        self.method = method
        self.uri = uri  # request-target as received: path plus "?query"
        path, _, query = uri.partition("?")
        self.path = path
        self.query = query
        self.version = version  # "1.1" or "1.0"
        self.headers = headers
        self.host = host if host is not None else host_of(headers.get("host") or "")
        self.scheme = "https" if conn.tls else "http"
        self.conn = conn
        self.client_addr = conn.client_addr
        self.client_port = conn.client_port
        self.request_id = ""
        self.start = start
        self.start_wall = start_wall
        self.route: Any = None
        self.service: Any = None
        self.consumer: Any = None
        self.matched_uri = ""
        self.matched_host = ""
        self.vars: dict[str, Any] = {}
        self.plugin_ctx: dict[str, Any] = {}
        # the first WASM plugin's context for this request (the others' are in
        # ``plugin_ctx``): a field, as a dict entry costs it three lookups per request
        self.wasm_ctx: Any = None
        self.content_length: int | None = None
        self.chunked = False
        # the whole request body once some plugin buffered it (see ``read_body``)
        self.body: bytes | None = None
        # set by the server: ``await req.read_body(limit)`` buffers the body (413 past limit)
        self.read_body: Callable[[int], Awaitable[bytes]] | None = None
        self.keep_alive = True
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.upstream_addr = ""
        self.upstream_status = 0
        self.upstream_latency: float | None = None
        self._args: dict[str, str] | None = None
        self._cookies: dict[str, str] | None = None
        # the parser's cached parse this request copies, while nothing (no plugin
        # phase, no URI rewrite) has changed the request: the upstream head built from
        # it can then be reused for the next identical request on the connection
        self.head_source: Any = None

    @property
    def args(self) -> dict[str, str]:
        """Query arguments (first value wins, as nginx's ``$arg_name``)."""
        if self._args is None:
            args: dict[str, str] = {}
            if self.query:
                for k, v in parse_qsl(self.query, keep_blank_values=True):
                    args.setdefault(k, v)
            self._args = args
        return self._args

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            cookies: dict[str, str] = {}
            for raw in self.headers.get_all("cookie"):
                for part in raw.split(";"):
                    name, sep, value = part.strip().partition("=")
                    if sep and name not in cookies:
                        cookies[name] = value
            self._cookies = cookies
        return self._cookies

    def set_uri(self, uri: str) -> None:
        """Rewrite the request-target sent upstream (proxy-rewrite, WASM ``:path``)."""
        self.uri = uri
        self.path, _, self.query = uri.partition("?")
        self._args = None
        self.head_source = None


class Response:
    """A response on its way to the client: from the upstream, or made locally.

    Header filters may change ``status`` and ``headers``; body filters see the body
    chunk by chunk. A local response (a plugin ending the request, an error) carries
    its whole ``body``.
    """

    __slots__ = ("status", "headers", "body", "local", "reason", "origin")

    def __init__(
        self,
        status: int,
        headers: Headers | None = None,
        body: bytes | None = None,
        local: bool = False,
    ) -> None:
        self.status = status
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.local = local
        self.reason = ""
        # for a relayed response: the upstream's fields (hop-by-hop ones stripped) that
        # ``headers`` started as; filters that leave them be and only append keep the
        # cached downstream head usable (``edge.proxy.downstream_head``)
        self.origin: list[list[str]] | None = None

    def __repr__(self) -> str:
        return f"Response({self.status}, local={self.local})"


JSON_CT = "application/json"


def json_response(status: int, message: str, headers: Headers | None = None) -> Response:
    """The gateway's error shape: ``{"error_msg": "..."}``."""
    import json

    h = headers if headers is not None else Headers()
    h.set("Content-Type", JSON_CT)
    body = json.dumps({"error_msg": message}, separators=(",", ":")).encode()
    return Response(status, h, body, local=True)
