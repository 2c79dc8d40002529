"""The keep-alive fast path: plain-TCP connections driven by callbacks from one epoll.

A trio task per connection parks twice per proxied request (client read, upstream
read), and each park and resume goes through trio's run loop and the task's
coroutine chain: measured, that alone cost ~49 us of CPU per request, more than the
whole budget of a request at 0.40x nginx's throughput. Here one trio task waits on
an epoll instance of its own and each readiness event calls a plain method, so
waiting costs a dict lookup and a call.

What runs here: requests on plain TCP connections (PROXY protocol already read)
with no body, whose handlers do not have to wait (every built-in plugin but
hmac-auth, limit-req, limit-conn and fault-injection; WASM plugins unless the
guest made an http_call), to plain-HTTP upstreams with an idle keep-alive
connection in the pool. Everything else is handed to the trio path
(``edge.server.HTTPConnection``) at a point where nothing gets done twice: before
the phases, where they stopped, or at the upstream step (a retry included); once
that connection is idle again, it comes back here.

Behaviour is the trio path's: the same parser and limits, phases
(``edge.proxy.run_phases``), forwarded head, response framing, error responses,
log phase and access log. Timeouts come from the worker's reaper
(``WorkerState.waiting_conns`` and ``expire()``), as there.
"""

from __future__ import annotations

import logging
import math
import os
import select
import time
from typing import Any

import trio

from edge.context import Request, Response, json_response
from edge.errors import ClientError, LocalReply, UpstreamError, UpstreamTimeout
from edge.http.events import CLOSED, END_OF_MESSAGE, NEED_DATA, BodyChunk, ProtocolError
from edge.http.parser import RequestParser
from edge.http.writer import LAST_CHUNK, chunk
from edge.plugins.chain import PluginChain
from edge.proxy import (
    Resume,
    Suspend,
    body_filters,
    downstream_head,
    error_response,
    filter_body_sync,
    header_filters_sync,
    local_bytes,
    log_phase,
    new_request,
    run_phases,
    upstream_response,
)
from edge.server import HTTPConnection, refusal, serve_handed_over
from edge.transport import io_waiters
from edge.upstream.client import forward_head, may_retry
from edge.upstream.health import TCP, TIMEOUT

log = logging.getLogger("edge.reactor")

RECV_SIZE = 65536
_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
# upstream connections stay registered for their life, edge-triggered: a connection
# the trio path is using, or one idle in the pool, then costs nothing here
_UPSTREAM_EVENTS = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
_HUP = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR

# FastConn.state
_IDLE, _HEAD, _UPSTREAM, _BODY, _FLUSH, _GONE = range(6)


async def _read_no_body(limit: int) -> bytes:
    return b""


class Reactor:
    """The fast path of one worker (``WorkerState.reactor`` while ``run`` runs)."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.ep = select.epoll()
        self.handlers: dict[int, Any] = {}
        self.conns: set[FastConn] = set()
        self.nursery: trio.Nursery | None = None

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        wait_readable = io_waiters()[0]
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self.worker.reactor = self
            task_status.started()
            epfd = self.ep.fileno()
            poll = self.ep.poll
            handlers = self.handlers
            try:
                while True:
                    await wait_readable(epfd)
                    for fd, ev in poll(0):
                        h = handlers.get(fd)
                        if h is not None:
                            try:
                                h(ev)
                            except Exception:
                                # handlers contain their own failures; this is a bug, and
                                # one connection's bug must not stop all the others
                                log.exception("fast path: event handler failed")
            finally:
                self.worker.reactor = None
                for c in list(self.conns):
                    c.close()
                self.ep.close()

    def adopt(self, stream: trio.SocketStream, info: Any, parser: RequestParser) -> None:
        """Take over an idle plain-TCP connection from the trio path."""
        c = FastConn(self, stream, info, parser)
        self.conns.add(c)
        c.set_events(_IN)
        c.next_request()


class FastConn:
    """One downstream connection served by the reactor, and its request in flight."""

    __slots__ = (
        "r",
        "worker",
        "stream",
        "fd",
        "info",
        "parser",
        "state",
        "events",
        "deadline",
        "idle",
        "out",
        "eof",
        "head",
        "req",
        "route",
        "g",
        "chain",
        "resp",
        "started",
        "bytes_out",
        "up",
        "up_out",
        "node",
        "t0",
        "read_t",
        "got_any",
        "mode",
        "bf",
        "head_out",
        "uh",
        "view",
    )

    def __init__(self, r: Reactor, stream: trio.SocketStream, info: Any, parser: RequestParser):
        self.r = r
        self.worker = r.worker
        self.stream = stream
        self.fd = stream.socket.fileno()
        self.info = info
        self.parser = parser
        self.state = _IDLE
        self.events = 0  # what the epoll registration asks for; 0: not registered
        self.deadline = math.inf
        self.idle = False
        self.out = b""  # bytes the client's socket did not take yet
        self.eof = False
        self._clear()

    def _clear(self) -> None:
        self.head: Any = None
        self.req: Request | None = None
        self.route: Any = None
        self.g: PluginChain | None = None
        self.chain: PluginChain | None = None
        self.resp: Response | None = None
        self.started = False
        self.bytes_out = 0
        self.up: Any = None
        self.up_out = b""
        self.node: Any = None
        self.t0 = 0.0
        self.read_t = 0.0
        self.got_any = False
        self.mode = 0
        self.bf: Any = None
        self.head_out: bytes | None = None
        self.uh: Any = None
        self.view: Any = None

    # -- registration and timeouts -----------------------------------------------------

    def set_events(self, events: int) -> None:
        if events == self.events:
            return
        ep = self.r.ep
        if events == 0:
            # unregistered, not just masked: epoll reports hang-ups regardless of the mask
            ep.unregister(self.fd)
            self.r.handlers.pop(self.fd, None)
        elif self.events == 0:
            ep.register(self.fd, events)
            self.r.handlers[self.fd] = self.on_event
        else:
            ep.modify(self.fd, events)
        self.events = events

    def _wait(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.worker.waiting_conns.add(self)

    def expire(self) -> None:
        """The worker's reaper: the deadline of what this connection waits for passed."""
        try:
            if self.out:
                self._client_gone()  # the client stopped reading
            elif self.state == _IDLE:
                self.close()
            elif self.state == _HEAD:
                self._refuse(ProtocolError("timed out reading the request head", 408))
            elif self.state == _UPSTREAM:
                self._upstream_failed(UpstreamTimeout("upstream read timeout"), False)
            elif self.state == _BODY:
                self._fail(UpstreamTimeout("upstream read timeout"))
        except Exception:
            log.exception("fast path: timeout handling failed")
            self.close()

    # -- client side -------------------------------------------------------------------

    def on_event(self, ev: int) -> None:
        try:
            if ev & _OUT and self.out:
                self._flush()
            if ev & ~_OUT and self.state != _GONE:
                self._readable()
        except Exception:
            log.exception("fast path: connection handler crashed")
            self.close()

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        parser = self.parser
        parser.receive_data(data)
        if self.state < _UPSTREAM:
            self.next_request()
        elif not data:
            # the client half-closed (or left) during a request: answer it anyway, as
            # the trio path does; a write to a closed socket then reports it gone
            self.eof = True
            self.set_events(_OUT if self.out else 0)
        elif len(parser.trailing_data) > RECV_SIZE:
            # pipelined requests pile up while this one runs: stop reading for now
            self.set_events(_OUT if self.out else 0)

    def next_request(self) -> None:
        """Serve the next request if its head is here; otherwise wait for it."""
        parser = self.parser
        try:
            ev = parser.next_event()
        except ProtocolError as e:
            self._refuse(e)
            return
        if ev is NEED_DATA:
            if parser.trailing_data:
                if self.state != _HEAD:
                    # slowloris: the rest of the head must come within header_timeout
                    self.state = _HEAD
                    self.idle = False
                    self._wait(self.worker.limits.header_timeout)
            else:
                worker = self.worker
                if worker.stopping:
                    self.close()
                    return
                self.state = _IDLE
                self.idle = True
                self.deadline = time.monotonic() + worker.limits.keepalive_timeout
                worker.waiting_conns.add(self)
            if self.events != _IN:
                self.set_events(_IN)
            return
        if ev is CLOSED:
            self.close()
            return
        # the connection stays in ``waiting_conns``: its deadline is stale, but every way
        # on from here sets a new one or leaves the set before anything can wait
        self.idle = False
        self._start(ev)

    def _start(self, head: Any) -> None:
        worker = self.worker
        snap = worker.snapshot
        self.head = head
        if head.chunked or head.content_length or snap is None:
            self._hand_over(None)
            return
        self.parser.take_body()  # the bodiless request's end
        self.info.requests += 1
        self.state = _UPSTREAM
        req = self.req = new_request(worker, self.info, head, time.monotonic())
        req.read_body = _read_no_body
        route = self.route = snap.router.match(req)
        g = self.g = snap.global_chain
        if route is not None:
            chain = self.chain = route.chain
            if not chain.runs_before and (g is None or not g.runs_before):
                # the common plain route: nothing to run before the upstream
                self._proxy()
                return
        else:
            self.chain = None
        try:
            r, self.chain = run_phases(req, route, g, self.chain)
        except Exception as e:
            self._fail(e)
            return
        if r is None:
            self._proxy()
        elif isinstance(r, Suspend):
            self._hand_over(Resume(req, route, self.chain, suspend=r))
        else:
            self._local(r)

    def _hand_over(self, resume: Resume | None) -> None:
        """Give the connection, with the request under way, to the trio path."""
        self.set_events(0)
        self.worker.waiting_conns.discard(self)
        self.r.conns.discard(self)
        self.state = _GONE
        conn = HTTPConnection(self.stream, self.worker, self.info, parser=self.parser)
        assert self.r.nursery is not None
        self.r.nursery.start_soon(serve_handed_over, conn, self.head, resume)

    def _sync_response(self) -> bool:
        g, chain = self.g, self.chain
        return (chain is None or chain.sync_response) and (g is None or g.sync_response)

    def _local(self, resp: Response, filters: bool = True) -> None:
        req = self.req
        assert req is not None
        if filters:
            if not self._sync_response():
                self._hand_over(Resume(req, self.route, self.chain, local=resp))
                return
            g, chain = self.g, self.chain
            resp = header_filters_sync(req, resp, g, chain)
            body = resp.body or b""
            bf = body_filters(g, chain)
            if bf:
                body = filter_body_sync(bf, req, resp, body, True)
        else:
            body = resp.body or b""
        self.resp = resp
        self._send(local_bytes(req, resp, body, True))
        self._finish()

    def _send(self, data: bytes) -> None:
        self.started = True
        self.bytes_out += len(data)
        if self.out:
            self.out += data
            return
        try:
            n = os.write(self.fd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            self._client_gone()
            return
        if n < len(data):
            self.out = data[n:]
            self.set_events(_OUT if self.eof else _OUT | _IN)
            self._wait(self.worker.limits.send_timeout)

    def _flush(self) -> None:
        try:
            n = os.write(self.fd, self.out)
        except BlockingIOError:
            return
        except OSError:
            self._client_gone()
            return
        self.out = self.out[n:]
        if self.out:
            self._wait(self.worker.limits.send_timeout)
            return
        self.worker.waiting_conns.discard(self)
        self.set_events(0 if self.eof else _IN)
        if self.state == _FLUSH:
            self._end()
        elif self.state == _BODY and self.up is not None:
            self._wait(self.read_t)
            self._read_upstream()

    def _client_gone(self) -> None:
        """The client went away or stopped reading (nginx's 499)."""
        req = self.req
        self.out = b""
        if req is None:
            self.close()
            return
        req.status = 499
        req.keep_alive = False
        self._abort_upstream()
        self._end()

    def _refuse(self, exc: ProtocolError) -> None:
        req, data = refusal(self.worker, self.info, exc)
        try:
            os.write(self.fd, data)  # best effort: the connection closes anyway
        except OSError:
            pass
        self.worker.access_log.write(req, time.monotonic())
        self.close()

    def _fail(self, e: BaseException) -> None:
        """What ``edge.proxy.handle`` does with an exception, for a request here."""
        req = self.req
        assert req is not None
        req.keep_alive = False
        self._abort_upstream()
        if isinstance(e, LocalReply):
            if self.started:
                req.status = req.status or 502
                self._finish()
            else:
                self._local(e.response)
            return
        if not isinstance(e, (ClientError, UpstreamError)):
            log.exception("request %s failed", req.request_id, exc_info=e)
        elif isinstance(e, UpstreamError):
            log.warning("request %s: upstream %s: %s", req.request_id, req.upstream_addr or "-", e)
        if self.started:
            # part of the response is out: the only honest signal left is to close
            req.status = req.status or 502
            self._finish()
        else:
            self._local(error_response(e), filters=False)

    def _finish(self) -> None:
        """The response is complete; end the request once the client has it all."""
        if self.out:
            self.state = _FLUSH
            return
        self._end()

    def _end(self) -> None:
        req = self.req
        assert req is not None
        worker = self.worker
        req.bytes_out = self.bytes_out
        g, chain = self.g, self.chain
        if (g is not None and g.log) or (chain is not None and chain.log):
            log_phase(req, self.resp, g, chain)
        worker.access_log.write(req, time.monotonic())
        worker.requests -= 1
        keep = req.keep_alive and not worker.stopping
        # what the next request reads before setting it (the rest is set on the way),
        # and what would keep this request's objects (and snapshot) alive
        self.head = self.req = self.route = self.g = self.chain = self.resp = None
        self.uh = self.view = self.up = None
        self.started = False
        self.bytes_out = 0
        self.up_out = b""
        if not keep:
            self.close()
            return
        self.state = _IDLE
        self.next_request()

    def close(self) -> None:
        if self.state == _GONE:
            return
        self.state = _GONE
        self.set_events(0)
        self.worker.waiting_conns.discard(self)
        self.r.conns.discard(self)
        self._abort_upstream()
        self.stream.socket.close()
        self.worker.conn_closed()

    # -- upstream side -----------------------------------------------------------------

    def _proxy(self) -> None:
        req, route, chain, g = self.req, self.route, self.chain, self.g
        assert req is not None
        upstream = route.upstream
        if upstream is None:
            self._local(json_response(502, "502 Bad Gateway: route has no upstream"))
            return
        if upstream.scheme != "http" or not (
            (chain is None or chain.sync_response) and (g is None or g.sync_response)
        ):
            self._hand_over(Resume(req, route, chain))
            return
        worker = self.worker
        view = self.view = worker.health.view(upstream)
        balancer = upstream.balancer
        node = (
            balancer.pick(req, _NONE_TRIED, view.healthy)
            if view is not None
            else balancer.pick(req, _NONE_TRIED)
        )
        if node is None:
            self._hand_over(Resume(req, route, chain))
            return
        try:
            fh = forward_head(req, upstream, node, None, False)
        except ClientError as e:
            self._fail(e)
            return
        _pool, uc = worker.pools.take_idle(upstream, node, None)
        if uc is None:
            # connecting is the trio path's job; the connection comes back to the pool
            self._hand_over(Resume(req, route, chain, node=node))
            return
        req.upstream_addr = node.key
        balancer.on_start(node)
        self.node = node
        self.up = uc
        self.got_any = False
        t = route.timeout
        self.read_t = read_t = t[2] if t is not None else upstream.timeouts[2]
        uc.parser.start(req.method)
        r = self.r
        if not uc.polled:
            r.ep.register(uc.fd, _UPSTREAM_EVENTS)
            uc.polled = True
        r.handlers[uc.fd] = self.on_upstream
        self.t0 = now = time.monotonic()
        # the upstream read timeout
        self.deadline = now + read_t
        worker.waiting_conns.add(self)
        try:
            n = os.write(uc.fd, fh)
        except BlockingIOError:
            n = 0
        except OSError:
            self._upstream_failed(UpstreamError("upstream connection broken while sending"), True)
            return
        if n < len(fh):
            self.up_out = fh[n:]

    def on_upstream(self, ev: int) -> None:
        if self.up is None:
            return  # an event from a connection no longer in use here
        try:
            if self.up_out:
                self._send_upstream()
            if not self.out:
                self._read_upstream(bool(ev & _HUP))
        except Exception as e:
            self._fail(e)

    def _send_upstream(self) -> None:
        try:
            n = os.write(self.up.fd, self.up_out)
        except BlockingIOError:
            return
        except OSError:
            self._upstream_failed(UpstreamError("upstream connection broken while sending"), True)
            return
        self.up_out = self.up_out[n:]

    def _read_upstream(self, drain: bool = True) -> None:
        """Read what the upstream sent. Edge-triggered: a short read means the socket
        is empty and new bytes raise a new edge, but an EOF that came along with the
        last bytes raises none, so with a hang-up pending (``drain``) read to EAGAIN."""
        uc = self.up
        while uc is not None and uc is self.up and not self.out:
            try:
                data = os.read(uc.fd, RECV_SIZE)
            except BlockingIOError:
                return
            except OSError as err:
                self._upstream_eof(UpstreamError(f"upstream connection broken: {err}"))
                return
            if not data:
                self._upstream_eof(None)
                return
            self.got_any = True
            parser = uc.parser
            parser.receive_data(data)
            if self.state == _UPSTREAM:
                try:
                    ev = parser.next_event()
                except UpstreamError as e:
                    self._upstream_failed(e, False)
                    return
                if ev is not NEED_DATA:
                    self._on_head(ev)
            else:
                self._pump()
            if len(data) < RECV_SIZE and not drain:
                return

    def _upstream_eof(self, err: UpstreamError | None) -> None:
        uc = self.up
        if self.state == _UPSTREAM and not self.got_any and uc.requests:
            self._upstream_failed(UpstreamError("reused connection closed by upstream"), True)
            return
        if err is not None:
            if self.state == _UPSTREAM:
                self._upstream_failed(err, False)
            else:
                self._fail(err)
            return
        uc.parser.receive_data(b"")
        if self.state == _UPSTREAM:
            self._await_head()
        else:
            self._pump()

    def _await_head(self) -> None:
        try:
            ev = self.up.parser.next_event()
        except UpstreamError as e:
            self._upstream_failed(e, False)
            return
        if ev is not NEED_DATA:
            self._on_head(ev)

    def _upstream_failed(self, e: UpstreamError, stale: bool) -> None:
        """No response head came (or the request could not be sent)."""
        req, route = self.req, self.route
        assert req is not None
        upstream = route.upstream
        node = self.node
        self.worker.pools.discard(self.up)
        self.up = None
        self.up_out = b""
        upstream.balancer.on_finish(node, None)
        if stale:
            # the upstream closed an idle keep-alive connection under us: the request
            # never reached the application; the trio path tries a fresh connection
            self._hand_over(Resume(req, route, self.chain, node=node))
            return
        view = self.view
        if view is not None:
            view.report_failure(node, TIMEOUT if isinstance(e, UpstreamTimeout) else TCP)
        deadline = self.t0 + upstream.retry_timeout if upstream.retry_timeout else math.inf
        if may_retry(e, req.method, 1, upstream.retries, deadline, True):
            self._hand_over(Resume(req, route, self.chain, tried={node.key}, attempt=1))
            return
        self._fail(e)

    def _on_head(self, uh: Any) -> None:
        req = self.req
        assert req is not None
        latency = time.monotonic() - self.t0
        req.upstream_status = uh.status
        req.upstream_latency = latency
        self.route.upstream.balancer.on_finish(self.node, latency)
        view = self.view
        if view is not None:
            view.report_status(self.node, uh.status)
        g, chain = self.g, self.chain
        assert chain is not None  # a matched route's
        self.uh = uh
        if not chain.filters and (g is None or not g.filters):
            # nothing looks at the response: relayed as it comes
            self.state = _BODY
            self.bf = _NO_FILTERS
            self.mode, self.head_out = downstream_head(req, uh, None, False, True, self.up)
            self._pump()
            return
        bf = self.bf = body_filters(g, chain)
        resp = upstream_response(uh)
        resp = header_filters_sync(req, resp, g, chain)
        if resp.local:
            # a header filter answered instead of the upstream (filters already ran)
            self._abort_upstream()
            self._local(resp, filters=False)
            return
        self.resp = resp
        self.state = _BODY
        self.mode, self.head_out = downstream_head(req, uh, resp, bool(bf), True, self.up)
        self._pump()

    def _pump(self) -> None:
        """Relay what the upstream parser has of the body; finish at its end."""
        uc = self.up
        parser = uc.parser
        req = self.req
        bf = self.bf
        mode = self.mode
        head = self.head_out
        self.head_out = None
        got = parser.take_body()
        if got is not None:
            # a length-delimited body (nearly every response): what is here, at once
            data, eof = got
            if bf and (data or eof):
                resp = self.resp
                assert req is not None and resp is not None
                data = filter_body_sync(bf, req, resp, data, eof)
            if mode == 2:
                if data:
                    data = chunk(data)
                if eof:
                    data += LAST_CHUNK
            out = head + data if head is not None else data
        else:
            out, eof = self._pump_events(head)
        if out:
            self._send(out)
            if self.state == _GONE or self.req is None:
                return
        if eof:
            self.up = None
            self.worker.pools.release(uc, self.uh.keep_alive)
            if self.out:
                self.state = _FLUSH  # ``_flush`` ends the request once the client has it
            else:
                self._end()
        elif not self.out:
            self._wait(self.read_t)

    def _pump_events(self, head: bytes | None) -> tuple[bytes, bool]:
        """``_pump`` for chunked and close-delimited bodies: event by event."""
        parser = self.up.parser
        bf = self.bf
        mode = self.mode
        parts: list[bytes] = [head] if head is not None else []
        eof = False
        while True:
            ev = parser.next_event()
            if ev is NEED_DATA:
                break
            if type(ev) is BodyChunk:
                data = ev.data
            elif ev is END_OF_MESSAGE:
                data = b""
                eof = True
            else:
                raise UpstreamError(f"unexpected upstream event {ev!r}")
            if bf:
                req, resp = self.req, self.resp
                assert req is not None and resp is not None
                data = filter_body_sync(bf, req, resp, data, eof)
            if mode == 2:
                if data:
                    parts.append(chunk(data))
                if eof:
                    parts.append(LAST_CHUNK)
            elif data:
                parts.append(data)
            if eof:
                break
        return b"".join(parts), eof

    def _abort_upstream(self) -> None:
        if self.up is not None:
            self.worker.pools.discard(self.up)
            self.up = None
            self.up_out = b""


_NONE_TRIED: frozenset[str] = frozenset()
_NO_FILTERS: list[Any] = []  # shared, never appended to
