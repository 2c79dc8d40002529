"""The request flow: route, plugin phases, upstream, response filters, log.

For each request (``handle``): capture the worker's snapshot once; assign a request id;
match the route; run the global rules' rewrite and access handlers (even when no route
matched, as APISIX does); no route -> 404; the route chain's rewrite; if an auth plugin
identified a consumer, switch to the route's chain for that consumer and run the
rewrite handlers of plugins that joined with it; access; then the upstream. Every
response, local ones included, goes through the header_filter and body_filter handlers
of the global and route chains; log handlers and the access log always run.

``error_response`` is the one place that turns a failure into what the client sees.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from edge.context import Request, Response, host_of, json_response
from edge.errors import (
    ClientError,
    EdgeError,
    LocalReply,
    PluginError,
    UpstreamError,
    UpstreamTimeout,
)
from edge.http.events import ProtocolError, RequestHead, ResponseHead
from edge.http.headers import Headers
from edge.http.writer import (
    LAST_CHUNK,
    HeadWriteError,
    chunk,
    finish_head,
    response_head,
    strip_hop_by_hop,
)
from edge.plugins.base import Handler
from edge.plugins.chain import PluginChain
from edge.server import ClientGone
from edge.upstream.client import Exchange, NoUpstreamNode, RequestBody, UpstreamConn, forward

if TYPE_CHECKING:
    from edge.server import HTTPConnection

log = logging.getLogger("edge.proxy")

# a request body up to this size is read whole before going upstream, which makes the
# request replayable (retries) at a bounded memory cost, as nginx's client_body_buffer
BUFFER_BODY_BELOW = 64 * 1024

_EMPTY: list[Handler] = []
_NO_BODY = RequestBody()


def error_response(exc: BaseException) -> Response:
    """The response a client gets for a failure; never carries internal details."""
    if isinstance(exc, ClientError):
        return json_response(exc.status, str(exc))  # our own words about their request
    if isinstance(exc, UpstreamTimeout):
        return json_response(504, "504 Gateway Timeout")
    if isinstance(exc, NoUpstreamNode):
        return json_response(503, "503 Service Unavailable: no upstream node available")
    if isinstance(exc, UpstreamError):
        return json_response(502, "502 Bad Gateway")
    if isinstance(exc, PluginError):
        return json_response(exc.status, f"{exc.status} plugin failure")
    if isinstance(exc, EdgeError):
        return json_response(exc.status, f"{exc.status} error")
    return json_response(500, "500 Internal Server Error")


def not_found() -> Response:
    return json_response(404, "404 Route Not Found")


class Suspend:
    """``run_phases`` stopped at a handler that has to be awaited: ``fn`` (an ``async
    def`` handler, not yet called) or ``pending`` (what a sync-first handler returned),
    at ``index`` of ``stage``."""

    __slots__ = ("stage", "index", "fn", "pending")

    def __init__(self, stage: int, index: int, fn: Any, pending: Any) -> None:
        self.stage = stage
        self.index = index
        self.fn = fn
        self.pending = pending


# the stages of the request phases, in order
_G_REWRITE: Final = 0
_G_ACCESS: Final = 1
_REWRITE: Final = 2
_JOINED: Final = 3
_ACCESS: Final = 4
_DONE: Final = 5


def run_phases(
    req: Request,
    route: Any,
    g: PluginChain | None,
    chain: PluginChain | None,
    stage: int = 0,
    index: int = 0,
) -> tuple[Response | Suspend | None, PluginChain | None]:
    """Run the rewrite and access handlers from ``(stage, index)`` on, without waiting.

    Returns (a local response, ``None`` to go upstream, or a ``Suspend`` at the first
    handler that must be awaited) and the chain in force (the consumer's, once an
    auth plugin found one). Global rules run even when no route matched, as APISIX's.
    """
    if (
        stage == 0
        and (g is None or not (g.rewrite or g.access))
        and (chain is None or not (chain.rewrite or chain.access))
    ):
        # nothing to run (the common plain route): only the 404 to decide
        if route is None:
            return not_found(), None
        req.route = route
        return None, chain
    while stage < _DONE:
        if stage == _G_REWRITE:
            hs = g.rewrite if g is not None else _EMPTY
        elif stage == _G_ACCESS:
            hs = g.access if g is not None else _EMPTY
        elif stage == _REWRITE:
            if route is None:
                return not_found(), None
            req.route = route
            assert chain is not None  # a route has its chain
            hs = chain.rewrite
        elif stage == _JOINED:
            if index == 0 and req.consumer is not None and chain is route.chain:
                chain = route.chain_for_consumer(req.consumer)
            assert chain is not None
            # empty for the route's own chain: only a consumer's chain has joiners
            hs = chain.joined_rewrite
        else:
            assert chain is not None
            hs = chain.access
        if hs:
            owner = g if stage <= _G_ACCESS else chain
            assert owner is not None
            if owner.edits_unmarked:
                # handlers may change what goes upstream: the head derived from the raw
                # request (``Request.head_source``) can no longer be reused
                req.head_source = None
            n = len(hs)
            while index < n:
                h = hs[index]
                fn = h[2]
                if h[1]:
                    return Suspend(stage, index, fn, None), chain
                r = fn(req)
                if r is not None:
                    if isinstance(r, Response):
                        return r, chain
                    return Suspend(stage, index, None, r), chain
                index += 1
        stage += 1
        index = 0
    return None, chain


async def _run_phases(
    req: Request,
    route: Any,
    g: PluginChain | None,
    chain: PluginChain | None,
    s: Suspend | None = None,
) -> tuple[Response | None, PluginChain | None]:
    """``run_phases`` to the end, awaiting whatever it stops at."""
    r: Response | Suspend | None
    if s is None:
        r, chain = run_phases(req, route, g, chain)
    else:
        r = s
    while isinstance(r, Suspend):
        x = await r.pending if r.fn is None else await r.fn(req)
        if x is not None:
            return x, chain
        r, chain = run_phases(req, route, g, chain, r.stage, r.index + 1)
    return r, chain


class Resume:
    """A request the reactor (``edge.reactor``) began and hands over: its ``Request``
    (counted and logged once, by whoever finishes it), route, chain, and how far it
    got: where the phases stopped (``suspend``), or the local response they made
    (``local``, filters not run yet), or neither (the upstream step is next, after
    ``attempt`` attempts at the nodes in ``tried``, beginning with ``node`` if set)."""

    __slots__ = ("req", "route", "chain", "suspend", "local", "tried", "attempt", "node")

    def __init__(
        self,
        req: Request,
        route: Any,
        chain: Any,
        suspend: Suspend | None = None,
        local: Response | None = None,
        tried: set[str] | None = None,
        attempt: int = 0,
        node: Any = None,
    ) -> None:
        self.req = req
        self.route = route
        self.chain = chain
        self.suspend = suspend
        self.local = local
        self.tried = tried
        self.attempt = attempt
        self.node = node


def new_request(worker: Any, info: Any, head: RequestHead, start: float) -> Request:
    """The ``Request`` for ``head``, counted as in flight."""
    src = head.source
    host = src.host if src is not None else None
    if host is None:
        host = host_of(head.headers.get("host") or "")
        if src is not None:
            src.host = host
    req = Request(
        head.method, head.target, head.version, head.headers, info, start, time.time(), host
    )
    req.content_length = head.content_length
    req.chunked = head.chunked
    req.head_source = src
    req.keep_alive = (
        head.keep_alive
        and not worker.stopping
        and info.requests < worker.limits.max_keepalive_requests
    )
    req.request_id = worker.next_request_id()
    worker.requests += 1
    worker.total_requests += 1
    return req


async def handle(conn: HTTPConnection, head: RequestHead, resume: Resume | None = None) -> bool:
    """Serve one request; True when the connection may carry another one."""
    worker = conn.worker
    snap = worker.snapshot  # this request's configuration, whatever reloads happen
    if resume is None:
        req = new_request(worker, conn.info, head, time.monotonic())
    else:
        req = resume.req
    req.read_body = _body_reader(conn, req)
    g = snap.global_chain if snap is not None else None
    chain: PluginChain | None = None
    resp: Response | None = None
    try:
        try:
            if snap is None:
                resp = json_response(503, "503 Service Unavailable: no configuration loaded")
            else:
                if resume is None:
                    route = snap.router.match(req)
                    resp, chain = await _run_phases(
                        req, route, g, route.chain if route is not None else None
                    )
                else:
                    route, chain, resp = resume.route, resume.chain, resume.local
                    if resume.suspend is not None:
                        resp, chain = await _run_phases(req, route, g, chain, resume.suspend)
                if resp is None:
                    resp = await _proxy(conn, req, route, g, chain, resume)
            if resp is not None:
                await _send_local(conn, req, resp, g, chain)
        except ClientGone:
            req.status = 499
            req.keep_alive = False
        except LocalReply as reply:
            # the rest of the request body was never read: the connection cannot go on
            req.keep_alive = False
            resp = reply.response
            if conn.response_started:
                req.status = req.status or 502
            else:
                try:
                    await _send_local(conn, req, resp, g, chain)
                except ClientGone:
                    req.status = 499
        except Exception as e:
            if not isinstance(e, (ClientError, UpstreamError)):
                log.exception("request %s failed", req.request_id)
            elif isinstance(e, UpstreamError):
                log.warning(
                    "request %s: upstream %s: %s", req.request_id, req.upstream_addr or "-", e
                )
            req.keep_alive = False
            if conn.response_started:
                # part of the response is out: the only honest signal left is to close
                req.status = req.status or 502
            else:
                resp = error_response(e)
                try:
                    await _send_local(conn, req, resp, g, chain, filters=False)
                except ClientGone:
                    req.status = 499
    finally:
        req.bytes_in = conn.body_bytes
        req.bytes_out = conn.bytes_out
        if (g is not None and g.log) or (chain is not None and chain.log):
            log_phase(req, resp, g, chain)
        worker.access_log.write(req, time.monotonic())
        worker.requests -= 1
    return req.keep_alive


def _body_reader(conn: HTTPConnection, req: Request) -> Callable[[int], Awaitable[bytes]]:
    """``req.read_body(limit)`` for plugins: buffers the whole body once into
    ``req.body`` (413 past ``limit``, 0 = only the node's max_body_size); later calls,
    and the upstream request, reuse it."""

    async def read_body(limit: int) -> bytes:
        if req.body is None:
            req.body = await conn.read_body(limit)
        elif limit and len(req.body) > limit:
            raise ProtocolError("request body too large", 413)
        return req.body

    return read_body


def log_phase(
    req: Request, resp: Response | None, g: PluginChain | None, chain: PluginChain | None
) -> None:
    if g is not None and g.log:
        _log_handlers(g.log, req, resp)
    if chain is not None and chain.log:
        _log_handlers(chain.log, req, resp)


def _log_handlers(hs: list[Handler], req: Request, resp: Response | None) -> None:
    for h in hs:
        try:
            h[2](req, resp)
        except Exception:
            log.exception("log handler of plugin %s failed", h[0].name)


async def _header_filters(
    req: Request, resp: Response, g: PluginChain | None, chain: PluginChain | None
) -> Response:
    for c in (g, chain):
        if c is None:
            continue
        for _plugin, is_async, fn in c.header_filter:
            r = await fn(req, resp) if is_async else fn(req, resp)
            if r is not None:
                resp = r
    return resp


def header_filters_sync(
    req: Request, resp: Response, g: PluginChain | None, chain: PluginChain | None
) -> Response:
    """``_header_filters`` for chains whose ``sync_response`` is true (the reactor)."""
    if g is not None and g.header_filter:
        resp = _header_handlers(g.header_filter, req, resp)
    if chain is not None and chain.header_filter:
        resp = _header_handlers(chain.header_filter, req, resp)
    return resp


def _header_handlers(hs: list[Handler], req: Request, resp: Response) -> Response:
    for h in hs:
        r = h[2](req, resp)
        if r is not None:
            resp = r
    return resp


def body_filters(g: PluginChain | None, chain: PluginChain | None) -> list[Handler]:
    gf = g.body_filter if g is not None else _EMPTY
    cf = chain.body_filter if chain is not None else _EMPTY
    if not gf:
        return cf
    return gf + cf if cf else gf


async def _filter_body(
    handlers: list[Handler], req: Request, resp: Response, data: bytes, eof: bool
) -> bytes:
    for _plugin, is_async, fn in handlers:
        data = await fn(req, resp, data, eof) if is_async else fn(req, resp, data, eof)
    return data


def filter_body_sync(
    handlers: list[Handler], req: Request, resp: Response, data: bytes, eof: bool
) -> bytes:
    for _plugin, _is_async, fn in handlers:
        data = fn(req, resp, data, eof)
    return data


def _connection_header(req: Request, headers: Headers) -> None:
    if not req.keep_alive:
        headers.set("Connection", "close")
    elif req.version == "1.0":
        headers.set("Connection", "keep-alive")


def local_bytes(req: Request, resp: Response, body: bytes, body_done: bool) -> bytes:
    """What goes to the client for a local response whose filters have run."""
    if not body_done:
        # the request body was not read: its bytes would be taken for the next request
        req.keep_alive = False
    resp.headers.set("Content-Length", str(len(body)))
    _connection_header(req, resp.headers)
    req.status = resp.status
    try:
        head = response_head(resp.status, resp.headers)
    except HeadWriteError:
        log.error("request %s: a plugin set an invalid response header", req.request_id)
        resp = json_response(500, "500 Internal Server Error")
        resp.headers.set("Content-Length", str(len(resp.body or b"")))
        resp.headers.set("Connection", "close")
        req.keep_alive = False
        req.status = 500
        head = response_head(500, resp.headers)
        body = resp.body or b""
    return head if req.method == "HEAD" else head + body


async def _send_local(
    conn: HTTPConnection,
    req: Request,
    resp: Response,
    g: PluginChain | None,
    chain: PluginChain | None,
    filters: bool = True,
) -> None:
    """Send a response made by edge or a plugin (whole body known)."""
    if filters:
        resp = await _header_filters(req, resp, g, chain)
    body = resp.body or b""
    if filters:
        bf = body_filters(g, chain)
        if bf:
            body = await _filter_body(bf, req, resp, body, True)
    await conn.send(local_bytes(req, resp, body, conn.body_done))


async def _request_body(
    conn: HTTPConnection, req: Request, chain: PluginChain | None
) -> RequestBody:
    filters: list[Handler] = chain.request_body_filter if chain is not None else _EMPTY
    if req.body is not None:
        data = req.body
        if filters:
            data = await _filter_stream_chunk(filters, req, data, True)
        return RequestBody(data=data)
    cl = req.content_length
    if not req.chunked:
        if cl is None:
            return RequestBody()
        if cl == 0:
            return RequestBody(data=b"")
        if cl <= BUFFER_BODY_BELOW:
            data = await conn.read_body(0)
            req.body = data
            if filters:
                data = await _filter_stream_chunk(filters, req, data, True)
            return RequestBody(data=data)
    if filters:
        return RequestBody(stream=_FilteredBody(conn, req, filters), chunked=True)
    return RequestBody(stream=_RawBody(conn), content_length=cl, chunked=req.chunked)


async def _filter_stream_chunk(
    handlers: list[Handler], req: Request, data: bytes, eof: bool
) -> bytes:
    for _plugin, is_async, fn in handlers:
        data = await fn(req, data, eof) if is_async else fn(req, data, eof)
    return data


class _RawBody:
    """The client's body as an async iterator of chunks (consumed once)."""

    __slots__ = ("conn",)

    def __init__(self, conn: HTTPConnection) -> None:
        self.conn = conn

    def __aiter__(self) -> _RawBody:
        return self

    async def __anext__(self) -> bytes:
        data = await self.conn.receive_body()
        if not data:
            raise StopAsyncIteration
        return data


class _FilteredBody:
    __slots__ = ("conn", "req", "filters", "ended")

    def __init__(self, conn: HTTPConnection, req: Request, filters: list[Handler]) -> None:
        self.conn = conn
        self.req = req
        self.filters = filters
        self.ended = False

    def __aiter__(self) -> _FilteredBody:
        return self

    async def __anext__(self) -> bytes:
        if self.ended:
            raise StopAsyncIteration
        data = await self.conn.receive_body()
        if not data:
            self.ended = True
        return await _filter_stream_chunk(self.filters, self.req, data, self.ended)


def timeouts(route: Any, upstream: Any) -> tuple[float, float, float]:
    t = getattr(route, "timeout", None)
    if t is None:
        return upstream.timeouts  # type: ignore[no-any-return]
    if isinstance(t, tuple):
        return t
    return (t.connect, t.send, t.read)


async def _proxy(
    conn: HTTPConnection,
    req: Request,
    route: Any,
    g: PluginChain | None,
    chain: PluginChain | None,
    resume: Resume | None,
) -> Response | None:
    """Relay the request upstream and stream the response back. Returns a Response
    only when there is no upstream to ask (the caller sends it)."""
    worker = conn.worker
    upstream = route.upstream
    if upstream is None:
        return json_response(502, "502 Bad Gateway: route has no upstream")
    if req.content_length is None and not req.chunked and req.body is None:
        body = _NO_BODY
    else:
        body = await _request_body(conn, req, chain)
    r = resume
    ex = await forward(
        worker.pools,
        worker.health,
        req,
        upstream,
        body,
        timeouts(route, upstream),
        r.tried if r is not None else None,
        r.attempt if r is not None else 0,
        r.node if r is not None else None,
    )
    try:
        return await _relay(conn, req, ex, g, chain)
    except BaseException:
        ex.abort()
        raise


def upstream_response(uh: ResponseHead) -> Response:
    """The upstream's head as a ``Response`` for header and body filters."""
    src = uh.source
    if src is None or uh.has_own_headers():
        headers = uh.headers
        strip_hop_by_hop(headers)
        resp = Response(uh.status, headers)
    else:
        # a repeated head: the hop-by-hop fields are stripped once, on its source
        stripped = src.stripped
        if stripped is None:
            h = Headers.from_lowered([e[:] for e in src.headers.raw()])
            strip_hop_by_hop(h)
            stripped = src.stripped = h.raw()
        # the entries are shared: Headers never changes one in place
        resp = Response(uh.status, Headers.from_lowered(stripped[:]))
        resp.origin = stripped
    resp.reason = uh.reason
    return resp


# fields whose value decides the framing: a filter that adds one gets a head built anew
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


def downstream_head(
    req: Request,
    uh: ResponseHead,
    resp: Response | None,
    rechunk: bool,
    body_done: bool,
    uconn: UpstreamConn,
) -> tuple[int, bytes]:
    """The framing mode of the body (0: none, 1: length, 2: chunked, 3: until close)
    and the head that goes to the client. ``resp`` is the filtered response, or None
    when no filter looked at it; ``rechunk``: body filters may change the length."""
    status = resp.status if resp is not None else uh.status
    mode = 0
    if not (req.method == "HEAD" or status == 204 or status == 304):
        if uh.content_length is not None and not rechunk:
            mode = 1
        elif req.version == "1.1":
            mode = 2
        else:
            mode = 3
            req.keep_alive = False
    if not body_done:
        req.keep_alive = False
    req.status = status
    src = uh.source
    if src is not None and (resp is None or resp.origin is not None):
        # with no filter in the way, the head sent downstream is a function of the
        # upstream head's bytes and of these: a repeated upstream head reuses it
        key = (src, mode, req.keep_alive, req.version)
        cached = uconn.head_cache
        if cached is None or cached[0] != key:
            head = _finish_head(req, uh.status, upstream_response(uh).headers, mode)
            cached = uconn.head_cache = (key, head)
        if resp is None:
            return mode, cached[1]
        # filters ran: still that head if they left the upstream's fields (the very
        # entries: an edit makes a new one) and status alone, plus the fields they
        # appended; the same appended fields as last time make the same head
        origin = resp.origin
        assert origin is not None
        items = resp.headers.raw()
        n = len(origin)
        if status == uh.status and len(items) >= n and _same_entries(items, origin, n):
            if len(items) == n:
                return mode, cached[1]
            extra = items[n:]
            spliced = uconn.splice_cache
            if spliced is not None and spliced[0] is cached and _same_fields(spliced[1], extra):
                return mode, spliced[2]
            lines = []
            for e in extra:
                if e[0] in _FRAMING:
                    break
                lines.append(f"{e[1]}: {e[2]}\r\n")
            else:
                lines.append("\r\n")
                try:
                    head = cached[1][:-2] + finish_head("".join(lines), len(lines))
                except HeadWriteError:
                    pass  # response_head below names the problem
                else:
                    uconn.splice_cache = (cached, extra, head)
                    return mode, head
    if resp is None:
        resp = upstream_response(uh)
    return mode, _finish_head(req, status, resp.headers, mode)


def _same_entries(items: list[list[str]], origin: list[list[str]], n: int) -> bool:
    """The first ``n`` entries of ``items`` are those of ``origin`` (by identity)."""
    for i in range(n):
        if items[i] is not origin[i]:
            return False
    return True


def _same_fields(a: list[list[str]], b: list[list[str]]) -> bool:
    """``a == b`` for header entries, compared as the strings they hold (a list
    comparison goes through the generic protocol for every entry)."""
    if len(a) != len(b):
        return False
    for i in range(len(a)):
        x, y = a[i], b[i]
        if x[1] != y[1] or x[2] != y[2]:
            return False
    return True


def _finish_head(req: Request, status: int, headers: Headers, mode: int) -> bytes:
    """The downstream head of ``headers``, framed for ``mode`` (``headers`` change)."""
    if mode >= 2:
        headers.remove("content-length")
        if mode == 2:
            headers.add("Transfer-Encoding", "chunked")
    _connection_header(req, headers)
    return response_head(status, headers)


async def _relay(
    conn: HTTPConnection,
    req: Request,
    ex: Exchange,
    g: PluginChain | None,
    chain: PluginChain | None,
) -> Response | None:
    uh = ex.head
    req.upstream_status = uh.status
    req.upstream_latency = ex.latency
    bf = body_filters(g, chain)
    hf = (g is not None and g.header_filter) or (chain is not None and chain.header_filter)
    resp: Response | None = None
    if bf or hf:
        resp = upstream_response(uh)
        if hf:
            resp = await _header_filters(req, resp, g, chain)
        if resp.local:
            # a header filter answered instead of the upstream (filters already ran)
            ex.abort()
            await _send_local(conn, req, resp, g, chain, filters=False)
            return None
    mode, head = downstream_head(req, uh, resp, bool(bf), conn.body_done, ex.conn)
    if mode == 0:
        await conn.send(head)
        # consume the (empty) body's end so the connection goes back to the pool
        ex.ready_chunk()
        ex.finish()
        return None
    # the head and the first chunk usually arrived together: send them together
    data = ex.ready_chunk()
    head_pending: bytes | None = head
    if data is None:
        await conn.send(head)
        head_pending = None
        data = await ex.next_chunk()
    while True:
        eof = not data
        if bf:
            assert resp is not None
            data = await _filter_body(bf, req, resp, data, eof)
        if mode == 2:
            out = (chunk(data) if data else b"") + (LAST_CHUNK if eof else b"")
        else:
            out = data
        if head_pending is not None:
            out = head_pending + out
            head_pending = None
        if out:
            await conn.send(out)
        if eof:
            break
        data = await ex.next_chunk()
    ex.finish()
    return None
