"""The trio HTTP/1.1 server: accept loop and per-connection request loop.

Thin around the sans-IO ``RequestParser``: this module only moves bytes, applies the
timeouts of ``Limits`` with cancel scopes, and hands each request head to
``edge.proxy.handle``. Requests on one connection are served one after the other,
so pipelined requests are answered in order (the parser keeps the bytes of the next
request until it is asked for it).

Connection setup (``WorkerState.conn_setup``) is the hook where PROXY protocol and TLS
plug in; ``listener_conf`` (an ``edge.node_config.ListenerConf`` or anything with the
same attributes) is passed to it untouched.
"""

from __future__ import annotations

import errno
import logging
import math
import ssl
import time
from typing import Any

import trio

from edge.context import ConnInfo, Request, json_response
from edge.errors import ClientError
from edge.http.events import (
    CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    BodyChunk,
    ProtocolError,
    RequestHead,
)
from edge.http.headers import Headers
from edge.http.parser import RequestParser
from edge.http.writer import CONTINUE_100, response_head
from edge.transport import FdTransport, transport_for
from edge.worker_state import WorkerState

log = logging.getLogger("edge.server")

RECV_SIZE = 65536
# accept() errors that mean "out of resources right now", as trio's serve_listeners
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_RETRY_DELAY = 0.1


class ClientGone(ClientError):
    """The client closed the connection or stopped reading (nginx's 499)."""

    status = 499


_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)


def _sockname(stream: Any) -> tuple[tuple[str, int], tuple[str, int]]:
    sock = getattr(stream, "socket", None)
    if sock is None:
        return ("", 0), ("", 0)
    try:
        peer = sock.getpeername()
        me = sock.getsockname()
        return (peer[0], peer[1]), (me[0], me[1])
    except (OSError, IndexError, TypeError):
        return ("", 0), ("", 0)


async def serve_listener(
    listener: trio.abc.Listener[Any], worker: WorkerState, listener_conf: Any = None
) -> None:
    """Accept connections on ``listener`` and serve them until the worker drains.

    Returns once draining has started and every connection accepted here is closed.
    The listener is closed when accepting stops, so the kernel hands new connections
    to sibling workers (SO_REUSEPORT) or refuses them.
    """
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as scope:
            worker._accept_scopes.add(scope)
            if worker.draining.is_set():
                scope.cancel()
            try:
                while True:
                    try:
                        stream = await listener.accept()
                    except OSError as e:
                        if e.errno not in _ACCEPT_CAPACITY_ERRNOS:
                            raise
                        log.error("accept failed (%s); retrying", errno.errorcode[e.errno])
                        await trio.sleep(_ACCEPT_RETRY_DELAY)
                        continue
                    worker.conn_opened()
                    nursery.start_soon(_serve_connection, stream, worker, listener_conf)
            finally:
                worker._accept_scopes.discard(scope)
        with trio.CancelScope(shield=True):
            await listener.aclose()


async def _serve_connection(stream: trio.abc.Stream, worker: WorkerState, lconf: Any) -> None:
    adopted = False
    try:
        (paddr, pport), (saddr, sport) = _sockname(stream)
        info = ConnInfo(paddr, pport, saddr, sport, worker.next_conn_id())
        initial = b""
        if worker.conn_setup is not None:
            stream, initial = await worker.conn_setup(stream, info, lconf)
        adopted = await HTTPConnection(stream, worker, info, initial).serve()
    except _BROKEN:
        pass
    except ClientError as e:
        # refused during connection setup (bad PROXY header, TLS handshake...)
        log.info("connection refused during setup: %s", e)
    except Exception:
        log.exception("connection handler crashed")
    finally:
        if not adopted:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
            worker.conn_closed()


async def serve_handed_over(conn: HTTPConnection, head: RequestHead, resume: Any) -> None:
    """Finish a request the reactor began (``edge.reactor``), then serve the
    connection on in trio until it is idle and can go back."""
    adopted = False
    try:
        adopted = await conn.serve((head, resume))
    except _BROKEN:
        pass
    except Exception:
        log.exception("connection handler crashed")
    finally:
        if not adopted:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(conn.stream)
            conn.worker.conn_closed()


def refusal(worker: WorkerState, info: ConnInfo, exc: ProtocolError) -> tuple[Request, bytes]:
    """The log record and the bytes of the answer to a request that could not be parsed."""
    now = time.monotonic()
    req = Request("-", "-", "1.1", Headers(), info, now, time.time())
    req.request_id = worker.next_request_id()
    req.status = exc.status
    req.keep_alive = False
    log.info("refused request from %s: %s (%d)", info.client_addr, exc, exc.status)
    resp = json_response(exc.status, str(exc))
    body = resp.body or b""
    resp.headers.set("Content-Length", str(len(body)))
    resp.headers.set("Connection", "close")
    return req, response_head(exc.status, resp.headers) + body


class HTTPConnection:
    """One downstream connection; ``edge.proxy`` uses its body and send methods."""

    __slots__ = (
        "stream",
        "tr",
        "scope",
        "head_started",
        "deadline",
        "idle",
        "worker",
        "info",
        "limits",
        "parser",
        "head",
        "body_done",
        "body_bytes",
        "continue_sent",
        "response_started",
        "bytes_out",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        worker: WorkerState,
        info: ConnInfo,
        initial: bytes = b"",
        parser: RequestParser | None = None,
    ) -> None:
        self.stream = stream
        self.tr = transport_for(stream)
        self.worker = worker
        self.info = info
        self.limits = worker.limits
        self.parser = parser if parser is not None else RequestParser(worker.limits)
        if initial:
            self.parser.receive_data(initial)
        self.head: RequestHead | None = None
        self.body_done = True
        self.body_bytes = 0
        self.continue_sent = False
        self.response_started = False
        self.bytes_out = 0
        self.scope = trio.CancelScope()
        self.head_started = False
        # while waiting for a request: when the reaper may give up on us, and whether
        # we are between requests (a drain closes those at once)
        self.deadline = math.inf
        self.idle = False

    async def serve(self, first: tuple[RequestHead, Any] | None = None) -> bool:
        """Serve requests until the connection closes; True when it went to the reactor
        instead (which then owns the stream). ``first``: a request head the reactor
        read, and the ``edge.proxy.Resume`` of how far it got with it."""
        from edge.proxy import handle

        worker = self.worker
        plain = type(self.tr) is FdTransport
        # one scope for the connection's life: the worker's reaper (or a drain) cancels
        # it when the keep-alive or head timeout of a registered wait has passed
        with trio.CancelScope() as scope:
            self.scope = scope
            while True:
                resume = None
                if first is not None:
                    head, resume = first
                    first = None
                else:
                    reactor = worker.reactor if plain else None
                    if (
                        reactor is not None
                        and not self.parser.trailing_data
                        and not worker.draining.is_set()
                    ):
                        reactor.adopt(self.stream, self.info, self.parser)
                        return True
                    got = await self._read_head()
                    if got is None:
                        return False
                    head = got
                self.head = head
                self.body_done = not head.has_body
                if self.body_done and resume is None:
                    # a bodiless request's END_OF_MESSAGE is already decided: consume it
                    self.parser.next_event()
                self.body_bytes = 0
                self.continue_sent = False
                self.response_started = False
                self.bytes_out = 0
                if resume is None:
                    self.info.requests += 1
                keep = await handle(self, head, resume)
                if not keep or not self.body_done or worker.draining.is_set():
                    return False
        if self.head_started:
            # the head timeout fired with part of a request received: say so, then close
            await self._refuse(ProtocolError("timed out reading the request head", 408))
        return False

    # -- request head -------------------------------------------------------------------

    async def _recv(self) -> bytes:
        try:
            return await self.tr.recv()
        except _BROKEN:
            return b""

    async def _read_head(self) -> RequestHead | None:
        parser = self.parser
        try:
            ev = parser.next_event()
            if ev is NEED_DATA:
                ev = await self._wait_head()
        except ProtocolError as e:
            await self._refuse(e)
            return None
        if ev is CLOSED:
            return None
        assert isinstance(ev, RequestHead)
        return ev

    def expire(self) -> None:
        """Called by the worker's reaper or a drain: stop waiting, close."""
        self.scope.cancel()

    async def _wait_head(self) -> Any:
        parser = self.parser
        limits = self.limits
        waiting = self.worker.waiting_conns
        self.head_started = bool(parser.trailing_data)
        try:
            if not self.head_started:
                # idle between requests: keep-alive timeout, and a drain closes us here
                if self.worker.draining.is_set():
                    return CLOSED
                self.idle = True
                self.deadline = time.monotonic() + limits.keepalive_timeout
                waiting.add(self)
                data = await self._recv_idle()
                parser.receive_data(data)
                ev = parser.next_event()
                if ev is not NEED_DATA:
                    return ev
                self.head_started = True
            # slowloris: the rest of the head must come within header_timeout
            self.idle = False
            self.deadline = time.monotonic() + limits.header_timeout
            waiting.add(self)
            while True:
                parser.receive_data(await self._recv())
                ev = parser.next_event()
                if ev is not NEED_DATA:
                    self.head_started = False
                    return ev
        finally:
            waiting.discard(self)

    async def _recv_idle(self) -> bytes:
        try:
            return await self.tr.recv()
        except _BROKEN:
            return b""

    async def _refuse(self, exc: ProtocolError) -> None:
        """Answer a request we could not parse, log it, and let the connection close."""
        req, data = refusal(self.worker, self.info, exc)
        try:
            with trio.move_on_after(self.limits.send_timeout):
                await self.tr.send_rest(data)
        except _BROKEN:
            pass
        self.worker.access_log.write(req, time.monotonic())

    # -- request body -------------------------------------------------------------------

    async def receive_body(self) -> bytes:
        """The next chunk of the request body, ``b""`` at its end.

        Sends ``100 Continue`` first when the client asked for it. Raises
        ``ProtocolError`` (400 framing, 408 body timeout, 413 too large) or
        ``ClientGone``.
        """
        if self.body_done:
            return b""
        head = self.head
        assert head is not None
        if head.expect_continue and not self.continue_sent and not self.response_started:
            self.continue_sent = True
            await self.send(CONTINUE_100, count=False)
        parser = self.parser
        while True:
            ev = parser.next_event()
            if isinstance(ev, BodyChunk):
                n = self.body_bytes = self.body_bytes + len(ev.data)
                limit = self.limits.max_body_size
                if limit and n > limit:
                    raise ProtocolError("request body too large", 413)
                return ev.data
            if ev is END_OF_MESSAGE:
                self.body_done = True
                return b""
            try:
                data = self.tr.recv_nowait()
            except _BROKEN:
                data = b""
            if data is None:
                with trio.CancelScope(
                    deadline=trio.current_time() + self.limits.body_timeout
                ) as sc:
                    data = await self._recv()
                if sc.cancelled_caught:
                    raise ProtocolError("timed out reading the request body", 408)
            if not data:
                raise ClientGone("client closed the connection during the body")
            parser.receive_data(data)

    async def read_body(self, limit: int) -> bytes:
        """Buffer the whole request body (for plugins); 413 when it exceeds ``limit``."""
        parts: list[bytes] = []
        size = 0
        while True:
            data = await self.receive_body()
            if not data:
                break
            size += len(data)
            if limit and size > limit:
                raise ProtocolError("request body too large", 413)
            parts.append(data)
        return b"".join(parts)

    # -- response -----------------------------------------------------------------------

    async def send(self, data: bytes, count: bool = True) -> None:
        """Write to the client; ``ClientGone`` if it went away or stopped reading."""
        self.response_started = self.response_started or count
        if count:
            self.bytes_out += len(data)
        try:
            n = self.tr.send_nowait(data)
            if n == len(data):
                return
            with trio.CancelScope(deadline=trio.current_time() + self.limits.send_timeout) as sc:
                await self.tr.send_rest(memoryview(data)[n:])
        except _BROKEN as e:
            raise ClientGone("client went away") from e
        if sc.cancelled_caught:
            raise ClientGone("client stopped reading")
