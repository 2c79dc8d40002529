"""Node health: active probes in the background, passive verdicts from live traffic.

``NodeHealth`` is the per-node counter state machine (pure, APISIX semantics: N
consecutive successes make a node healthy, N consecutive failures of one kind make
it unhealthy; a threshold of 0 disables that kind). ``HealthRegistry`` keeps one per
(upstream, checks config, node) so the state survives snapshot swaps as long as the
upstream and its checks are unchanged, and runs one active checker task per upstream
that has ``checks.active`` (started and cancelled as snapshots come and go).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import trio

from edge.http.events import NEED_DATA, ResponseHead
from edge.http.response_parser import ResponseParser

log = logging.getLogger("edge.health")

HTTP, TCP, TIMEOUT = "http", "tcp", "timeout"


class NodeHealth:
    __slots__ = ("healthy", "successes", "http_failures", "tcp_failures", "timeouts")

    def __init__(self) -> None:
        self.healthy = True
        self.successes = 0
        self.http_failures = 0
        self.tcp_failures = 0
        self.timeouts = 0

    def success(self, needed: int) -> bool:
        """Record a success; True when this flipped the node to healthy."""
        self.http_failures = self.tcp_failures = self.timeouts = 0
        self.successes += 1
        if not self.healthy and needed and self.successes >= needed:
            self.healthy = True
            self.successes = 0
            return True
        return False

    def failure(self, kind: str, threshold: int) -> bool:
        """Record a failure of ``kind``; True when this flipped the node to unhealthy."""
        self.successes = 0
        if kind == HTTP:
            self.http_failures += 1
            n = self.http_failures
        elif kind == TCP:
            self.tcp_failures += 1
            n = self.tcp_failures
        else:
            self.timeouts += 1
            n = self.timeouts
        if self.healthy and threshold and n >= threshold:
            self.healthy = False
            self.http_failures = self.tcp_failures = self.timeouts = 0
            return True
        return False

    def __repr__(self) -> str:
        return f"NodeHealth(healthy={self.healthy}, ok={self.successes})"


def _always(node: Any) -> bool:
    return True


class UpstreamHealth:
    """The health of one upstream's nodes, as seen by its balancer and its traffic."""

    __slots__ = ("key", "upstream", "nodes", "active", "passive", "has_passive")

    def __init__(self, key: str, upstream: Any, nodes: dict[str, NodeHealth]) -> None:
        self.key = key
        self.upstream = upstream
        self.nodes = nodes
        checks = upstream.checks
        self.active = checks.active if checks is not None else None
        self.passive = checks.passive if checks is not None else None
        self.has_passive = self.passive is not None

    def healthy(self, node: Any) -> bool:
        return self.nodes[node.key].healthy

    def _flip(self, node: Any, became: str, why: str) -> None:
        log.warning("upstream %s node %s is now %s (%s)", self.upstream.id, node.key, became, why)

    # -- passive ------------------------------------------------------------------------
    def report_status(self, node: Any, status: int) -> None:
        p = self.passive
        if p is None:
            return
        h = self.nodes.get(node.key)
        if h is None:
            return
        if status in p.unhealthy.http_statuses:
            if h.failure(HTTP, p.unhealthy.http_failures):
                self._flip(node, "unhealthy", f"passive: {status} responses")
        elif status in p.healthy.http_statuses and h.success(p.healthy.successes):
            self._flip(node, "healthy", "passive: successes")

    def report_failure(self, node: Any, kind: str) -> None:
        p = self.passive
        if p is None:
            return
        h = self.nodes.get(node.key)
        if h is None:
            return
        threshold = p.unhealthy.tcp_failures if kind == TCP else p.unhealthy.timeouts
        if h.failure(kind, threshold):
            self._flip(node, "unhealthy", f"passive: {kind} failures")

    # -- active -------------------------------------------------------------------------
    def probe_result(self, node: Any, kind: str | None, status: int = 0) -> None:
        a = self.active
        assert a is not None
        h = self.nodes[node.key]
        if kind is None and (a.type == "tcp" or status in a.healthy.http_statuses):
            if h.success(a.healthy.successes):
                self._flip(node, "healthy", "active probe")
            return
        if kind is None:
            if status not in a.unhealthy.http_statuses:
                return  # neither healthy nor unhealthy status: no verdict
            kind = HTTP
        threshold = {
            HTTP: a.unhealthy.http_failures,
            TCP: a.unhealthy.tcp_failures,
            TIMEOUT: a.unhealthy.timeouts,
        }[kind]
        if h.failure(kind, threshold):
            self._flip(node, "unhealthy", f"active probe: {kind}")


def _health_key(upstream: Any) -> str:
    # the same upstream id with different checks starts from a clean slate
    return f"{upstream.id}|{msgspec.json.encode(upstream.checks).decode()}"


def snapshot_upstreams(snapshot: Any) -> Iterable[Any]:
    """Every upstream a snapshot can route to (named ones and inline ones in routes)."""
    seen: set[int] = set()
    ups = getattr(snapshot, "upstreams", None) or {}
    for u in ups.values() if isinstance(ups, dict) else ups:
        if id(u) not in seen:
            seen.add(id(u))
            yield u
    routes = getattr(snapshot, "routes", None) or ()
    for r in routes.values() if isinstance(routes, dict) else routes:
        u = getattr(r, "upstream", None)
        if u is not None and id(u) not in seen:
            seen.add(id(u))
            yield u


class HealthRegistry:
    """Per-worker node health. ``predicate(upstream)`` is what the balancer consults."""

    def __init__(self) -> None:
        self._by_key: dict[str, UpstreamHealth] = {}
        # compiled upstream object id -> its health view, rebuilt on each sync
        self._views: dict[int, UpstreamHealth] = {}
        self._checkers: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self._ssl_ctx: ssl.SSLContext | None = None

    def view(self, upstream: Any) -> UpstreamHealth | None:
        return self._views.get(id(upstream))

    def predicate(self, upstream: Any) -> Callable[[Any], bool]:
        v = self._views.get(id(upstream))
        return v.healthy if v is not None else _always

    def sync(self, snapshot: Any) -> None:
        """Adopt the upstreams of a new snapshot; keep state of unchanged ones."""
        by_key: dict[str, UpstreamHealth] = {}
        views: dict[int, UpstreamHealth] = {}
        for u in snapshot_upstreams(snapshot) if snapshot is not None else ():
            if u.checks is None or (u.checks.active is None and u.checks.passive is None):
                continue
            key = _health_key(u)
            old = self._by_key.get(key) or by_key.get(key)
            nodes = {
                n.key: (old.nodes.get(n.key) if old else None) or NodeHealth() for n in u.nodes
            }
            if key in by_key:
                # two identical inline upstreams share state
                view = UpstreamHealth(key, u, by_key[key].nodes)
                view.nodes.update({k: v for k, v in nodes.items() if k not in view.nodes})
            else:
                view = UpstreamHealth(key, u, nodes)
                by_key[key] = view
            views[id(u)] = view
        self._by_key = by_key
        self._views = views
        self._restart_checkers()

    def _restart_checkers(self) -> None:
        if self._nursery is None:
            return
        wanted = {k: v for k, v in self._by_key.items() if v.active is not None}
        for key in list(self._checkers):
            if key not in wanted:
                self._checkers.pop(key).cancel()
        for key in wanted:
            if key not in self._checkers:
                scope = trio.CancelScope()
                self._checkers[key] = scope
                self._nursery.start_soon(self._check_loop, key, scope)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the active checkers until cancelled (``await nursery.start(reg.run)``)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._restart_checkers()
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None
                self._checkers.clear()

    async def _check_loop(self, key: str, scope: trio.CancelScope) -> None:
        with scope:
            while True:
                view = self._by_key.get(key)
                if view is None or view.active is None:
                    return
                a = view.active
                async with trio.open_nursery() as n:
                    limiter = trio.CapacityLimiter(max(1, a.concurrency))
                    for node in view.upstream.nodes:
                        n.start_soon(self._probe, view, node, limiter)
                any_bad = any(not h.healthy for h in view.nodes.values())
                await trio.sleep(a.unhealthy.interval if any_bad else a.healthy.interval)

    async def _probe(self, view: UpstreamHealth, node: Any, limiter: trio.CapacityLimiter) -> None:
        a = view.active
        assert a is not None
        async with limiter:
            kind: str | None = None
            status = 0
            with trio.move_on_after(a.timeout) as cs:
                try:
                    status = await self._probe_once(a, node)
                except (OSError, trio.BrokenResourceError, ssl.SSLError):
                    kind = TCP
                except Exception as e:  # a garbled answer counts as an HTTP failure
                    log.debug("probe of %s failed: %r", node.key, e)
                    kind = HTTP
            if cs.cancelled_caught:
                kind = TIMEOUT
            if view.nodes.get(node.key) is not None:
                view.probe_result(node, kind, status)

    async def _probe_once(self, a: Any, node: Any) -> int:
        host, port = node.addr
        stream: trio.abc.Stream = await trio.open_tcp_stream(host, a.port or port)
        try:
            if a.type == "tcp":
                return 0
            if a.type == "https":
                ctx = ssl.create_default_context()
                if not a.https_verify_certificate:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                stream = trio.SSLStream(stream, ctx, server_hostname=a.host or host)
                await stream.do_handshake()
            hdrs = "".join(f"{h}\r\n" for h in a.req_headers)
            req = (
                f"GET {a.http_path} HTTP/1.1\r\nHost: {a.host or node.host}\r\n"
                f"User-Agent: edge-health-check\r\n{hdrs}Connection: close\r\n\r\n"
            )
            await stream.send_all(req.encode("latin-1"))
            parser = ResponseParser()
            parser.start("GET")
            while True:
                ev = parser.next_event()
                if isinstance(ev, ResponseHead):
                    return ev.status
                if ev is NEED_DATA:
                    parser.receive_data(await stream.receive_some(65536))
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
