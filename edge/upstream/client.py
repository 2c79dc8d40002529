"""The upstream HTTP/1.1 client: pooled connections, one exchange per attempt, retries.

Foreign errors are translated once, here: ``OSError``/``trio.BrokenResourceError``/
``ssl.SSLError`` become ``UpstreamConnectError`` (502) when connecting and
``UpstreamError`` (502) later; timeouts become ``UpstreamTimeout`` (504). Errors from
the downstream side (reading the client's body) are already ``ClientError`` subclasses
and pass through untouched, so a client's fault never counts against a node's health.

Retries go to another node (``balancer.pick`` excludes tried ones) only while nothing
of the response went to the client, within ``upstream.retries`` and
``upstream.retry_timeout``, and only when the request body can be sent again:
no body, or a buffered one. A connection failure before anything was written
(refused, connect timeout) is retried for every method; a failure after the request
was sent is retried only for idempotent methods. A reused keep-alive connection that
the upstream closed while idle is replaced once on the same node without counting as
a retry (the request never reached the application).
"""

from __future__ import annotations

import math
import select
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import trio

from edge.context import Request
from edge.errors import (
    ClientError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from edge.http.events import END_OF_MESSAGE, NEED_DATA, BodyChunk, ResponseHead
from edge.http.limits import DEFAULT_LIMITS, Limits
from edge.http.response_parser import ResponseParser
from edge.http.writer import LAST_CHUNK, HeadWriteError, chunk
from edge.transport import transport_for
from edge.upstream.forwarding import upstream_head, upstream_host
from edge.upstream.health import TCP, TIMEOUT
from edge.upstream.pool import NodePool, PoolSet

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RECV_SIZE = 65536
# a body this small is sent in the same write as the head
_COALESCE = 16384
# an idle pooled connection younger than this is reused without a liveness probe
_FRESH = 1.0


class NoUpstreamNode(UpstreamError):
    status = 503


class UpstreamConn:
    """One connection to a node; lives in its ``NodePool`` between requests."""

    __slots__ = (
        "stream",
        "tr",
        "fd",
        "parser",
        "requests",
        "idle_since",
        "pool",
        "waits",
        "deadline",
        "timed_out",
        "head_cache",
        "splice_cache",
        "polled",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        fd: int,
        pool: NodePool[Any],
        limits: Limits,
        waits: set[UpstreamConn] | None = None,
    ) -> None:
        self.stream = stream
        self.tr = transport_for(stream)
        self.fd = fd
        self.parser = ResponseParser(limits)
        self.requests = 0
        self.idle_since = 0.0
        self.pool = pool
        # the worker's registry of reads in progress, and this read's deadline: the
        # reaper (``UpstreamPools.reap``) closes the connection under a read that is
        # late, which wakes the reader, who then reports a timeout
        self.waits: set[UpstreamConn] = waits if waits is not None else set()
        self.deadline = 0.0
        self.timed_out = False
        # the downstream head last made from a repeated head of this connection's
        # responses (see ``edge.proxy._relay``): ((source, mode, keep_alive, version), bytes)
        self.head_cache: tuple[tuple[Any, int, bool, str], bytes] | None = None
        # that head with the fields header filters appended last time: (head_cache
        # entry, appended entries, the spliced head)
        self.splice_cache: tuple[Any, list[list[str]], bytes] | None = None
        # registered (edge-triggered) in the reactor's epoll: done once per connection
        self.polled = False

    def expire(self) -> None:
        self.timed_out = True
        self.close_now()

    def close_now(self) -> None:
        """Close without blocking (no TLS close_notify): used for dead or surplus ones."""
        s: Any = self.stream
        sock = getattr(s, "socket", None)
        if sock is None:
            sock = getattr(getattr(s, "transport_stream", None), "socket", None)
        if sock is not None:
            sock.close()

    def looks_dead(self, now: float) -> bool:
        """An idle connection with something to read has been closed (or spoke unasked).

        One used moments ago is not probed: upstreams close idle connections after
        seconds, not milliseconds, and the rare race is covered by the stale-connection
        retry in ``_attempt``. That saves a syscall per request under load."""
        if self.parser.trailing_data:
            return True
        if now - self.idle_since < _FRESH:
            return False
        p = select.poll()
        p.register(self.fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(p.poll(0))

    def __repr__(self) -> str:
        return f"<UpstreamConn fd={self.fd} requests={self.requests}>"


class UpstreamPools:
    """The worker's connection pools and TLS contexts (``WorkerState.pools``)."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.pools: PoolSet[UpstreamConn] = PoolSet()
        self._ssl: dict[tuple[Any, ...], ssl.SSLContext] = {}
        # connections with a response read in progress (see ``UpstreamConn.waits``)
        self.waiting: set[UpstreamConn] = set()
        # a node of the current snapshot (its upstream's settings fixed) -> its pool,
        # when no SNI is involved: the lookup by identity key, once per node
        self._by_node: dict[Any, NodePool[UpstreamConn]] = {}

    def forget_nodes(self) -> None:
        """A new snapshot: its nodes (and keepalive settings) are looked up afresh."""
        self._by_node = {}

    def reap(self, now: float) -> None:
        """Time out every read whose deadline has passed (called by the worker's tick)."""
        for c in [c for c in self.waiting if c.deadline <= now]:
            self.waiting.discard(c)
            c.expire()

    def ssl_context(self, verify: bool) -> ssl.SSLContext:
        key = (verify,)
        ctx = self._ssl.get(key)
        if ctx is None:
            # create_default_context honours SSL_CERT_FILE / SSL_CERT_DIR for private CAs
            ctx = ssl.create_default_context()
            if not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl[key] = ctx
        return ctx

    def take_idle(
        self, upstream: Any, node: Any, sni: str | None
    ) -> tuple[NodePool[UpstreamConn], UpstreamConn | None]:
        """The node's pool and a live idle connection from it (counted in use), if any."""
        pool = self._by_node.get(node) if sni is None else None
        if pool is None:
            size, idle_timeout, max_requests = upstream.keepalive
            # the client certificate is part of the identity: upstreams presenting
            # different ones (or none) never share a connection
            key = (upstream.scheme, node.addr, sni, upstream.tls.verify, upstream.tls.client_cert)
            pool = self.pools.get(key, size, idle_timeout, max_requests)
            if sni is None:
                self._by_node[node] = pool
        while True:
            now = time.monotonic()
            conn, expired = pool.take(now)
            for c in expired:
                c.close_now()
            if conn is None:
                pool.discard()
                return pool, None
            if not conn.looks_dead(now):
                return pool, conn
            conn.close_now()
            pool.discard()

    async def acquire(
        self, upstream: Any, node: Any, sni: str | None, connect_timeout: float
    ) -> tuple[UpstreamConn, bool]:
        """A connection to ``node`` and whether it is a reused one."""
        pool, conn = self.take_idle(upstream, node, sni)
        if conn is not None:
            return conn, True
        pool.in_use += 1
        try:
            stream = await self._connect(upstream, node, sni, connect_timeout)
        except BaseException:
            pool.discard()
            raise
        raw: Any = stream if upstream.scheme != "https" else stream.transport_stream  # type: ignore[attr-defined]
        return UpstreamConn(stream, raw.socket.fileno(), pool, self.limits, self.waiting), False

    async def _connect(
        self, upstream: Any, node: Any, sni: str | None, connect_timeout: float
    ) -> trio.abc.Stream:
        host, port = node.addr
        try:
            with trio.fail_after(connect_timeout):
                stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
                if upstream.scheme == "https":
                    ctx = upstream.tls.context or self.ssl_context(upstream.tls.verify)
                    tls = trio.SSLStream(stream, ctx, server_hostname=sni, https_compatible=True)
                    try:
                        await tls.do_handshake()
                    except BaseException:
                        await trio.aclose_forcefully(stream)
                        raise
                    stream = tls
        except trio.TooSlowError:
            raise UpstreamTimeout("connect timeout") from None
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as e:
            raise UpstreamConnectError(f"connect failed: {e}") from e
        return stream

    def release(self, conn: UpstreamConn, reusable: bool) -> None:
        reusable = reusable and not conn.parser.trailing_data and conn.parser.at_message_boundary
        for c in conn.pool.release(conn, time.monotonic(), reusable):
            c.close_now()

    def discard(self, conn: UpstreamConn) -> None:
        conn.pool.discard()
        conn.close_now()

    def sweep(self) -> None:
        for c in self.pools.sweep(time.monotonic()):
            c.close_now()

    def close_all(self) -> None:
        for c in self.pools.close_all():
            c.close_now()


class RequestBody:
    """What goes upstream after the head: nothing, buffered bytes, or a one-shot stream."""

    __slots__ = ("data", "stream", "content_length", "chunked", "consumed")

    def __init__(
        self,
        data: bytes | None = None,
        stream: AsyncIterator[bytes] | None = None,
        content_length: int | None = None,
        chunked: bool = False,
    ) -> None:
        self.data = data
        self.stream = stream
        self.content_length = len(data) if data is not None else content_length
        self.chunked = chunked
        self.consumed = False

    @property
    def replayable(self) -> bool:
        return self.stream is None or not self.consumed


class Exchange:
    """One upstream response being relayed: its head, node and body events."""

    __slots__ = ("pools", "conn", "node", "head", "read_timeout", "done", "latency")

    def __init__(
        self,
        pools: UpstreamPools,
        conn: UpstreamConn,
        node: Any,
        head: ResponseHead,
        read_timeout: float,
        latency: float,
    ) -> None:
        self.pools = pools
        self.conn = conn
        self.node = node
        self.head = head
        self.read_timeout = read_timeout
        self.done = False
        self.latency = latency

    def ready_chunk(self) -> bytes | None:
        """A body chunk already buffered (no I/O), ``b""`` at the end, None if none yet."""
        ev = self.conn.parser.next_event()
        if isinstance(ev, BodyChunk):
            return ev.data
        if ev is END_OF_MESSAGE:
            self.done = True
            return b""
        return None

    async def next_chunk(self) -> bytes:
        """The next body chunk; ``b""`` at the end of the body."""
        parser = self.conn.parser
        while True:
            ev = parser.next_event()
            if isinstance(ev, BodyChunk):
                return ev.data
            if ev is END_OF_MESSAGE:
                self.done = True
                return b""
            if ev is NEED_DATA:
                parser.receive_data(await _receive(self.conn, self.read_timeout))

    def finish(self) -> None:
        """Return the connection to its pool (if the body was read whole) or close it."""
        self.pools.release(self.conn, self.done and self.head.keep_alive)

    def abort(self) -> None:
        self.pools.discard(self.conn)


_UPSTREAM_BROKEN = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError)


async def _receive(conn: UpstreamConn, timeout: float) -> bytes:
    """Bytes from the upstream. Under load the answer is often there already by the
    time this task runs again, so a read is tried before parking (measured: parking
    first costs more CPU per request, even right after sending the request)."""
    try:
        data = conn.tr.recv_nowait()
        if data is not None:
            return data
        conn.deadline = time.monotonic() + timeout
        conn.waits.add(conn)
        try:
            return await conn.tr.recv_wait()
        finally:
            conn.waits.discard(conn)
    except _UPSTREAM_BROKEN as e:
        if conn.timed_out:
            raise UpstreamTimeout("upstream read timeout") from None
        raise UpstreamError(f"upstream connection broken: {e}") from e


async def _send(conn: UpstreamConn, data: bytes, timeout: float) -> None:
    try:
        n = conn.tr.send_nowait(data)
        if n == len(data):
            return
        with trio.CancelScope(deadline=trio.current_time() + timeout) as sc:
            await conn.tr.send_rest(memoryview(data)[n:])
    except _UPSTREAM_BROKEN as e:
        raise _SendFailed(f"upstream connection broken while sending: {e}") from e
    if sc.cancelled_caught:
        raise UpstreamTimeout("upstream send timeout")


class _SendFailed(UpstreamError):
    pass


class _StaleConnection(UpstreamError):
    pass


def _sni(upstream: Any, node: Any, host_header: str) -> str | None:
    if upstream.scheme != "https":
        return None
    if upstream.tls.sni:
        return upstream.tls.sni
    if upstream.pass_host == "rewrite" and upstream.upstream_host:
        return upstream.upstream_host.partition(":")[0]
    return node.addr[0]


def may_retry(
    e: UpstreamError, method: str, attempt: int, retries: int, deadline: float, replayable: bool
) -> bool:
    """Whether a failed attempt (the ``attempt``-th) may be followed by another."""
    sent = not isinstance(e, UpstreamConnectError) and not (
        isinstance(e, UpstreamTimeout) and str(e) == "connect timeout"
    )
    return not (
        attempt > retries
        or time.monotonic() >= deadline
        or not replayable
        or (sent and method not in IDEMPOTENT)
        or isinstance(e, UpstreamProtocolError)
    )


async def forward(
    pools: UpstreamPools,
    health: Any,
    req: Request,
    upstream: Any,
    body: RequestBody,
    timeouts: tuple[float, float, float],
    tried: set[str] | None = None,
    attempt: int = 0,
    first: Any = None,
) -> Exchange:
    """Send ``req`` to a node of ``upstream``, retrying per the rules above; returns the
    exchange holding the response head. Raises an ``UpstreamError`` when out of tries.
    ``tried`` and ``attempt``: the nodes and the count of attempts already made (by the
    reactor, which hands a retry over to here); ``first``: the node to try first (the
    reactor's, whose pooled connection turned out stale)."""
    balancer = upstream.balancer
    healthy = health.predicate(upstream)
    view = health.view(upstream)
    if tried is None:
        tried = set()
    retries = upstream.retries
    deadline = time.monotonic() + upstream.retry_timeout if upstream.retry_timeout else math.inf
    while True:
        node = first if first is not None else balancer.pick(req, tried, healthy)
        first = None
        if node is None:
            raise NoUpstreamNode("no upstream node available")
        tried.add(node.key)
        req.upstream_addr = node.key
        balancer.on_start(node)
        t0 = time.monotonic()
        try:
            ex = await _attempt(pools, req, upstream, node, body, timeouts)
        except UpstreamError as e:
            balancer.on_finish(node, None)
            if view is not None:
                view.report_failure(node, TIMEOUT if isinstance(e, UpstreamTimeout) else TCP)
            attempt += 1
            if not may_retry(e, req.method, attempt, retries, deadline, body.replayable):
                raise
            continue
        latency = time.monotonic() - t0
        ex.latency = latency
        balancer.on_finish(node, latency)
        if view is not None:
            view.report_status(node, ex.head.status)
        return ex


def forward_head(
    req: Request,
    upstream: Any,
    node: Any,
    content_length: int | None,
    chunked: bool,
    host: str | None = None,
) -> bytes:
    """The request head that goes to ``node`` (``host``: its Host field when known).

    A repeat of the connection's previous request to the same node forwards as the
    same bytes: everything else the head depends on (the Host field included) is
    fixed per connection and node. An untouched repeated head is recognised by its
    parse (``Request.head_source``); one that plugins changed (an auth plugin's
    consumer fields, real-ip's address) by comparing what they could have changed,
    which costs a tenth of building it. Raises ``ClientError`` for a head that cannot
    be written (a plugin set an invalid header)."""
    src = req.head_source
    cache = req.conn.fwd_cache
    if (
        cache is not None
        and cache[1] is node
        and cache[2] == content_length
        and cache[3] == chunked
        and (
            cache[0] is src
            if src is not None
            else cache[0] is None
            and cache[5] == (req.method, req.uri, req.client_addr, req.host)
            and cache[6] == req.headers.raw()
        )
    ):
        return cache[4]
    if host is None:
        host = upstream_host(req, upstream, node)
    try:
        head = upstream_head(req, host, content_length, chunked)
    except HeadWriteError as e:
        raise ClientError(f"cannot forward request: {e}") from None
    if src is not None:
        req.conn.fwd_cache = (src, node, content_length, chunked, head, None, None)
    else:
        req.conn.fwd_cache = (
            None,
            node,
            content_length,
            chunked,
            head,
            (req.method, req.uri, req.client_addr, req.host),
            [e[:] for e in req.headers.raw()],
        )
    return head


async def _attempt(
    pools: UpstreamPools,
    req: Request,
    upstream: Any,
    node: Any,
    body: RequestBody,
    timeouts: tuple[float, float, float],
) -> Exchange:
    connect_t, send_t, read_t = timeouts
    host = upstream_host(req, upstream, node)
    sni = _sni(upstream, node, host)
    head = forward_head(req, upstream, node, body.content_length, body.chunked, host)
    for fresh_try in (False, True):
        conn, reused = await pools.acquire(upstream, node, sni, connect_t)
        try:
            return await _exchange(pools, conn, req, node, head, body, send_t, read_t)
        except (_SendFailed, _StaleConnection) as e:
            pools.discard(conn)
            # the upstream closed an idle keep-alive connection under us: one fresh try
            if (
                not reused
                or fresh_try
                or not body.replayable
                or (isinstance(e, _StaleConnection) and req.method not in IDEMPOTENT)
            ):
                raise
        except BaseException:
            pools.discard(conn)
            raise
    raise AssertionError("unreachable")


async def _exchange(
    pools: UpstreamPools,
    conn: UpstreamConn,
    req: Request,
    node: Any,
    head: bytes,
    body: RequestBody,
    send_t: float,
    read_t: float,
) -> Exchange:
    if body.data is not None:
        if len(body.data) <= _COALESCE:
            await _send(conn, head + body.data, send_t)
        else:
            await _send(conn, head, send_t)
            await _send(conn, body.data, send_t)
    else:
        await _send(conn, head, send_t)
        if body.stream is not None:
            body.consumed = True
            async for data in body.stream:
                if data:
                    await _send(conn, chunk(data) if body.chunked else data, send_t)
            if body.chunked:
                await _send(conn, LAST_CHUNK, send_t)
    parser = conn.parser
    parser.start(req.method)
    got_any = False
    while True:
        ev = parser.next_event()
        if isinstance(ev, ResponseHead):
            return Exchange(pools, conn, node, ev, read_t, 0.0)
        try:
            data = await _receive(conn, read_t)
        except UpstreamTimeout:
            raise
        except UpstreamError:
            if not got_any and conn.requests:
                raise _StaleConnection("reused connection closed by upstream") from None
            raise
        if not data and not got_any and conn.requests:
            raise _StaleConnection("reused connection closed by upstream")
        got_any = True
        parser.receive_data(data)
